// A tiny command line over age-encryption (typage, the TypeScript age library),
// an implementation independent of confvault's, for tests/age/test_interop_agejs.py.
//
//   node age.mjs keygen pq|x25519 FILE   new identity into FILE (0600, must not exist);
//                                        its recipient on stdout
//   node age.mjs recipient FILE          the recipient of each identity in FILE
//   node age.mjs encrypt [--armor] RECIPIENT...   stdin -> age file on stdout
//   node age.mjs decrypt FILE            age file (binary or armored) on stdin -> stdout
//   node age.mjs decrypt-passphrase FILE  the same, opened with the passphrase that
//                                        is FILE's first line (scrypt)
//
// Secret keys only travel in files, never in arguments. Errors: one line on
// stderr, exit status 1.

import { readFileSync, writeFileSync } from "node:fs";
import {
  Decrypter,
  Encrypter,
  armor,
  generateHybridIdentity,
  generateX25519Identity,
  identityToRecipient,
} from "age-encryption";

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return new Uint8Array(Buffer.concat(chunks));
}

function identities(path) {
  return readFileSync(path, "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
}

async function main([command, ...args]) {
  switch (command) {
    case "keygen": {
      const [kind, path] = args;
      const generate = { pq: generateHybridIdentity, x25519: generateX25519Identity }[kind];
      if (!generate || !path) throw Error("usage: keygen pq|x25519 FILE");
      const identity = await generate();
      writeFileSync(path, `${identity}\n`, { mode: 0o600, flag: "wx" });
      process.stdout.write(`${await identityToRecipient(identity)}\n`);
      return;
    }
    case "recipient":
      for (const identity of identities(args[0])) {
        process.stdout.write(`${await identityToRecipient(identity)}\n`);
      }
      return;
    case "encrypt": {
      const armored = args[0] === "--armor";
      const recipients = armored ? args.slice(1) : args;
      const e = new Encrypter();
      for (const r of recipients) e.addRecipient(r);
      const sealed = await e.encrypt(await readStdin());
      process.stdout.write(armored ? armor.encode(sealed) : sealed);
      return;
    }
    case "decrypt":
    case "decrypt-passphrase": {
      const d = new Decrypter();
      if (command === "decrypt") {
        for (const identity of identities(args[0])) d.addIdentity(identity);
      } else {
        d.addPassphrase(readFileSync(args[0], "utf8").split("\n")[0]);
      }
      let sealed = await readStdin();
      const text = new TextDecoder().decode(sealed.subarray(0, 64));
      if (text.trimStart().startsWith("-----BEGIN")) {
        sealed = armor.decode(new TextDecoder().decode(sealed));
      }
      process.stdout.write(await d.decrypt(sealed));
      return;
    }
    default:
      throw Error(`unknown command ${command}`);
  }
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`agejs: error: ${err.message}\n`);
  process.exit(1);
});
