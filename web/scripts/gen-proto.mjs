// Generates src/gen/ablate/v1/*.ts, the API's types, from proto/ with protoc and ts-proto, so
// the app never holds a hand-written copy of a message. The options follow the coordinator's
// JSON mapping: enums by name, 64-bit integers as strings, Timestamps as RFC 3339 strings.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const protoRoot = join(web, '..', 'proto');
const out = join(web, 'src', 'gen');
const plugin = join(web, 'node_modules', '.bin', 'protoc-gen-ts_proto');
const protos = readdirSync(join(protoRoot, 'ablate', 'v1'))
  .filter((f) => f.endsWith('.proto'))
  .map((f) => `ablate/v1/${f}`);

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
execFileSync(process.env.PROTOC || 'protoc', [
  `--plugin=protoc-gen-ts_proto=${plugin}`,
  `--ts_proto_out=${out}`,
  '--ts_proto_opt=onlyTypes=true,stringEnums=true,forceLong=string,useDate=string,' +
    'outputServices=false,useOptionals=all,esModuleInterop=true,enumsAsLiterals=true',
  `--proto_path=${protoRoot}`,
  ...protos,
], { stdio: 'inherit' });
