// Compiled (never run) by `infra/dev.sh test` against the types openapi-typescript generates
// from target/openapi.json: the generated client must type-check under --strict and name the
// problem schema and the operations a client starts with.
import type { components, operations, paths } from "../target/api";

export type Problem = components["schemas"]["Problem"];
export type Teams = paths["/teams"]["get"]["responses"][200]["content"]["application/json"];
export type Health = operations["health"];
