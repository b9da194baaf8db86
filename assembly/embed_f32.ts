// Patch embedding and token assembly (MODEL.md §2.1 steps 1-3).

/**
 * im2col: img [C, H, W] (CHW, contiguous) -> patches [M, C*P*P] with M = G*G, token m = gy*G + gx and
 * column c*P*P + ky*P + kx, the flattening order of the conv weight [D, C, P, P]; the patch embedding is
 * then one GEMM of these rows with the packed weight.
 */
export function im2col_f32(img: usize, ch: i32, h: i32, w: i32, p: i32, stride: i32, g: i32, out: usize): void {
  let o = out;
  for (let gy = 0; gy < g; gy++) {
    for (let gx = 0; gx < g; gx++) {
      for (let c = 0; c < ch; c++) {
        for (let ky = 0; ky < p; ky++) {
          const src = img + ((<usize>c * h + <usize>(gy * stride + ky)) * w + <usize>(gx * stride)) * 4;
          memory.copy(o, src, <usize>p << 2);
          o += <usize>p << 2;
        }
      }
    }
  }
}

/**
 * X [L, D] = tokens with the class token inserted at index cls, plus pos [L, D]:
 * rows 0..cls-1 = patches 0..cls-1, row cls = cls_token, rows cls+1..L-1 = patches cls..M-1.
 */
export function assemble_tokens_f32(patches: usize, clsToken: usize, pos: usize, out: usize,
                                    l: i32, d: i32, cls: i32): void {
  const rowBytes = <usize>d << 2;
  for (let t = 0; t < l; t++) {
    const src = t < cls ? patches + <usize>t * rowBytes : t == cls ? clsToken : patches + <usize>(t - 1) * rowBytes;
    const dst = out + <usize>t * rowBytes;
    const pr = pos + <usize>t * rowBytes;
    for (let j = 0; j < d; j += 4) {
      const o = <usize>j << 2;
      v128.store(dst + o, f32x4.add(v128.load(src + o), v128.load(pr + o)));
    }
  }
}
