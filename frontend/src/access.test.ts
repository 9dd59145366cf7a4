import { describe, expect, it } from "vitest";
import { allowed, mayOpen, type ApiDocument } from "./access";

// The shape GET /api/openapi.json gives (services/backend/api/openapi.py).
const doc: ApiDocument = {
  paths: {
    "/api/users": { get: { security: [{ bearer: [] }], "x-roles": ["admin"] } },
    "/api/conversations": { get: { security: [{ bearer: [] }], "x-roles": ["admin", "annotator", "tester"] } },
    "/api/models": { get: { security: [{ bearer: [] }], "x-roles": ["admin", "annotator", "tester"] } },
    "/api/user": { get: { security: [{ bearer: [] }] } },
  },
};

describe("what a role may open", () => {
  it("follows the roles the API document lists", () => {
    expect(mayOpen(doc, ["admin"], "users")).toBe(true);
    expect(mayOpen(doc, ["annotator"], "users")).toBe(false);
    expect(mayOpen(doc, ["annotator"], "conversations")).toBe(true);
    expect(mayOpen(doc, ["guest"], "conversations")).toBe(false);
  });

  it("lets any signed-in user call a route without x-roles, and nobody an unknown one", () => {
    expect(allowed(doc, ["guest"], "GET", "/api/user")).toBe(true);
    expect(allowed(doc, ["admin"], "DELETE", "/api/user")).toBe(false);
    expect(allowed(null, ["admin"], "GET", "/api/users")).toBe(false);
  });
});
