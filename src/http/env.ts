/** The Hono environment shared by every router: what middleware puts on the context. */
import type { RequestIdVariables } from "hono/request-id";

export type Role = "admin" | "user";

/** Who is calling: resolved from the bearer API key by the auth middleware. */
export interface Principal {
  userId: string;
  email: string;
  name: string;
  keyId: string;
  role: Role;
}

export type AppEnv = {
  Variables: RequestIdVariables & { principal: Principal };
};
