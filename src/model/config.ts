/**
 * Model shape (MODEL.md §1 notation): L tokens, D embed dim, E = 2D inner dim, N state size, R dt rank,
 * K conv width, G patch-grid side, M = G*G patches, c = M // 2 class-token index.
 */
export interface VimConfig {
  embedDim: number;   // D
  depth: number;      // number of blocks
  innerDim: number;   // E
  dState: number;     // N
  dtRank: number;     // R
  dConv: number;      // K
  patchSize: number;  // P (conv kernel)
  stride: number;     // S (16, or 8 for the long-sequence fine-tuned models)
  imageSize: number;  // input side, (G - 1) * S + P
  channels: number;   // 3 (RGB) or 1 (greyscale)
  numClasses: number;
  gridSize: number;   // G
  numTokens: number;  // L = M + 1
  clsIndex: number;   // c = M // 2
  normEps: number;    // RMSNorm epsilon, 1e-5
}
