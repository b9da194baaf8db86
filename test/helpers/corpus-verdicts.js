// What a web build's `decodeImage` makes of each image corpus file, in one batch: the SHA-256 of its RGB bytes,
// the message of the VimedgeError that refused it, or the crash (anything else thrown). Plain JavaScript,
// imported by a page in Chromium and run by Deno, for test/image-corpus.test.ts:
//   deno run --allow-read=CORPUS,DIST corpus-verdicts.js BUNDLE CORPUS < files.json  ->  verdicts as JSON

/**
 * `build`: the bundle's exports ({ decodeImage, VimedgeError }); `read(file)`: the file's bytes.
 * Returns { [file]: { sha256 } | { refused } | { crashed } }.
 */
export async function corpusVerdicts(build, files, read) {
  const verdicts = {};
  for (const file of files) {
    try {
      const image = await build.decodeImage(await read(file));
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', image.data));
      verdicts[file] = { sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('') };
    } catch (err) {
      verdicts[file] = err instanceof build.VimedgeError ? { refused: err.message } : { crashed: String(err?.stack ?? err) };
    }
  }
  return verdicts;
}

if (import.meta.main) {
  const [bundle, corpus] = Deno.args;
  const files = JSON.parse(await new Response(Deno.stdin.readable).text());
  const build = await import(new URL(bundle, `file://${Deno.cwd()}/`).href);
  const verdicts = await corpusVerdicts(build, files, (file) => Deno.readFile(`${corpus}/${file}`));
  console.log(JSON.stringify(verdicts));
}
