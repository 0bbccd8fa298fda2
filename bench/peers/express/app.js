// The bench's Express peer: Haven's four benched routes, written the way the Express,
// express-session / connect-redis, express-rate-limit / rate-limit-redis and node-postgres
// docs show them, against the same PostgreSQL tables Haven's seed filled.
//
//   GET  /health                  small JSON, no session, no Redis
//   GET  /api/v1/dashboard        session (connect-redis), rate limit (rate-limit-redis),
//                                 the organization's dashboard JSON cached in Redis (60 s)
//   GET  /api/v1/properties       50 rows by name, keyset cursor, scoped by organization
//   POST /api/v1/tenants          tenant row + audit row in one transaction; 201
//
// Environment: PORT, DATABASE_URL (postgresql://...), REDIS_URL, SESSION_SECRET.
// A session is what express-session stores under `sess:<sid>` with
// `userId` and `organizationId` set (bench/peers/sessions.py writes it; no login route).
"use strict";

const crypto = require("node:crypto");
const express = require("express");
const session = require("express-session");
const { RedisStore } = require("connect-redis");
const { createClient } = require("redis");
const { rateLimit } = require("express-rate-limit");
const { RedisStore: RateLimitStore } = require("rate-limit-redis");
const { Pool } = require("pg");

const redisClient = createClient({ url: process.env.REDIS_URL || "redis://127.0.0.1:6379" });
redisClient.on("error", (err) => console.error("redis:", err.message));
const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 10 });

const app = express();
app.disable("x-powered-by");
app.set("trust proxy", 1);

app.get("/health", (req, res) => {
  res.json({ success: true, status: "OK", instanceId: "express" });
});

const api = express.Router();
api.use(
  session({
    store: new RedisStore({ client: redisClient }),
    resave: false,
    saveUninitialized: false,
    secret: process.env.SESSION_SECRET || "bench secret",
    cookie: { httpOnly: true, sameSite: "lax", maxAge: 24 * 3600 * 1000 },
  }),
);
api.use((req, res, next) => {
  if (!req.session.userId) {
    return res.status(401).json({ title: "Unauthorized", status: 401 });
  }
  next();
});
// rate-limit-redis loads its script when the limiter is built: after the client connects.
function rateLimiter() {
  return rateLimit({
    windowMs: 60 * 1000,
    limit: Number(process.env.RATE_LIMIT_PER_USER || 10000000),
    keyGenerator: (req) => req.session.userId,
    standardHeaders: "draft-8",
    legacyHeaders: false,
    store: new RateLimitStore({
      sendCommand: (...args) => redisClient.sendCommand(args),
    }),
  });
}
api.use((req, res, next) => limiter(req, res, next));
let limiter;
api.use(express.json({ limit: "64kb" }));

const DASHBOARD_SQL = `
  SELECT
    (SELECT count(*) FROM properties WHERE organization_id = $1)::int AS properties,
    (SELECT count(*) FROM units WHERE organization_id = $1)::int AS units,
    (SELECT count(*) FROM units WHERE organization_id = $1 AND status = 'occupied')::int AS occupied,
    (SELECT count(*) FROM leases WHERE organization_id = $1 AND status = 'active')::int AS active_leases,
    (SELECT count(*) FROM tenants WHERE organization_id = $1)::int AS tenants,
    (SELECT count(*) FROM maintenance_requests
      WHERE organization_id = $1 AND status NOT IN ('completed', 'cancelled'))::int AS open_maintenance`;

api.get("/dashboard", async (req, res) => {
  const org = req.session.organizationId;
  const key = `dashboard:${org}`;
  const cached = await redisClient.get(key);
  if (cached) {
    return res.type("json").send(cached);
  }
  const { rows } = await pool.query(DASHBOARD_SQL, [org]);
  const r = rows[0];
  const body = JSON.stringify({
    properties: r.properties,
    units: r.units,
    occupiedUnits: r.occupied,
    occupancyRate: r.units ? r.occupied / r.units : 0,
    activeLeases: r.active_leases,
    tenants: r.tenants,
    openMaintenance: r.open_maintenance,
  });
  await redisClient.set(key, body, { EX: 60 });
  res.type("json").send(body);
});

function encodeCursor(name, id) {
  return Buffer.from(JSON.stringify(["name", name, id])).toString("base64url");
}

function decodeCursor(text) {
  try {
    const [sort, name, id] = JSON.parse(Buffer.from(text, "base64url").toString());
    if (sort === "name" && typeof name === "string" && /^[0-9a-f-]{36}$/.test(id)) {
      return [name, id];
    }
  } catch {
    // falls through to the 422
  }
  return null;
}

const PROPERTY_COLUMNS = `id, name, type, address_line1, address_line2, city, region,
  postal_code, country, year_built, unit_count, version, created_at, updated_at`;

api.get("/properties", async (req, res) => {
  const limit = Math.min(Math.max(Number.parseInt(req.query.limit ?? "50", 10) || 50, 1), 100);
  const org = req.session.organizationId;
  let result;
  if (req.query.cursor) {
    const after = decodeCursor(String(req.query.cursor));
    if (!after) {
      return res.status(422).json({ title: "Invalid cursor", status: 422 });
    }
    result = await pool.query(
      `SELECT ${PROPERTY_COLUMNS} FROM properties
       WHERE organization_id = $1 AND (name, id) > ($2, $3)
       ORDER BY name, id LIMIT $4`,
      [org, after[0], after[1], limit + 1],
    );
  } else {
    result = await pool.query(
      `SELECT ${PROPERTY_COLUMNS} FROM properties
       WHERE organization_id = $1 ORDER BY name, id LIMIT $2`,
      [org, limit + 1],
    );
  }
  const rows = result.rows;
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  const last = page[page.length - 1];
  res.set("Cache-Control", "no-store");
  res.json({
    items: page.map((p) => ({
      id: p.id,
      name: p.name,
      type: p.type,
      address: {
        line1: p.address_line1,
        line2: p.address_line2,
        city: p.city,
        region: p.region,
        postalCode: p.postal_code,
        country: p.country,
      },
      yearBuilt: p.year_built,
      unitCount: p.unit_count,
      version: p.version,
      createdAt: p.created_at,
      updatedAt: p.updated_at,
    })),
    nextCursor: more ? encodeCursor(last.name, last.id) : null,
  });
});

function text(value, max, required) {
  if (value === undefined || value === null) return required ? undefined : null;
  if (typeof value !== "string") return undefined;
  const trimmed = value.trim();
  if ((required && !trimmed) || trimmed.length > max) return undefined;
  return trimmed;
}

api.post("/tenants", async (req, res) => {
  const body = req.body || {};
  const firstName = text(body.firstName, 100, true);
  const lastName = text(body.lastName, 100, true);
  const email = text(body.email, 254, false);
  const phone = text(body.phone, 40, false);
  if (firstName === undefined || lastName === undefined || email === undefined || phone === undefined) {
    return res.status(422).json({ title: "Validation failed", status: 422 });
  }
  const org = req.session.organizationId;
  const id = crypto.randomUUID();
  const now = new Date();
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query(
      `INSERT INTO tenants (id, organization_id, first_name, last_name, email, phone, notes,
         version, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, NULL, 1, $7, $7)`,
      [id, org, firstName, lastName, email, phone, now],
    );
    await client.query(
      `INSERT INTO audit_events (id, organization_id, at, actor_id, action, entity_type,
         entity_id, changes)
       VALUES ($1, $2, $3, $4, 'tenant.created', 'tenant', $5, $6)`,
      [crypto.randomUUID(), org, now, req.session.userId, id, JSON.stringify(["firstName", "lastName"])],
    );
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK");
    throw err;
  } finally {
    client.release();
  }
  await redisClient.del(`dashboard:${org}`);
  res.status(201).json({
    id,
    firstName,
    lastName,
    email,
    phone,
    notes: null,
    version: 1,
    createdAt: now,
    updatedAt: now,
  });
});

app.use("/api/v1", api);

app.use((err, req, res, next) => {
  console.error(err);
  res.status(500).json({ title: "Internal Server Error", status: 500 });
});

async function main() {
  await redisClient.connect();
  limiter = rateLimiter();
  const port = Number(process.env.PORT || 3000);
  const server = app.listen(port, "127.0.0.1", () => {
    console.log(`express peer on 127.0.0.1:${port}`);
  });
  const stop = () => {
    server.close(() => {
      Promise.allSettled([pool.end(), redisClient.quit()]).then(() => process.exit(0));
    });
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
