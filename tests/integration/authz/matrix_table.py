"""The role matrix: every operation of /openapi.json, the status each caller must get.

Written down once, from what is correct (docs/security.md "Actors", API.md "Roles"), not from
what the app happened to answer. Columns:

- owner, manager, staff, viewer: members of organization A, calling with A's ids;
- other_org: the OWNER of organization B calling with A's ids (so a 404 is isolation, not a
  missing right); an operation without an id in its path or body acts in B and succeeds;
- resident, other_org_resident: a tenant of A signed in as a resident (the tenant of the
  fixture lease, on the fixture unit), and a resident of B. Every operation is closed to
  residents with a 404 unless it is listed in RESIDENT below; the columns are asserted only
  once haven.models.organization.ROLES has "resident".

Statuses: 200/201/202/204 the operation's success; 403 a role without the right (or, for the
operator endpoints, any bearer that is not the operator token); 404 another organization's
(or, for residents, another tenant's) record, or an operation closed to residents; 422 an
operation that acts in the caller's own organization but names another organization's record
in its body (a field that does not validate, answered exactly as an id that never existed:
test_role_matrix.py checks that).

Where a row reads oddly: a manager revokes only the API keys they created (docs/api-keys.md),
and the key in that cell is the owner's, so 403.

Adding an operation: add its line to TABLE (method and path exactly as /openapi.json writes
them), a RESIDENT entry if residents may call it, and in test_role_matrix.py's CALLS how to
call it when the defaults (shared fixture ids, the recorded OpenAPI example's body) are not
enough.
"""

from __future__ import annotations

COLUMNS = ("owner", "manager", "staff", "viewer", "other_org")
RESIDENT_COLUMNS = ("resident", "other_org_resident")

TABLE = """
operation                                                       owner manager staff viewer other_org
GET    /alive                                                     200     200   200    200       200
GET    /health                                                    200     200   200    200       200
GET    /ready                                                     200     200   200    200       200
GET    /metrics                                                   200     200   200    200       200
GET    /api/v1/load-balancer/health                               200     200   200    200       200
GET    /api/v1/load-balancer/metrics                              200     200   200    200       200
GET    /api/v1/load-balancer/config                               403     403   403    403       403
GET    /api/v1/load-balancer/instances                            403     403   403    403       403
POST   /api/v1/load-balancer/drain                                403     403   403    403       403
POST   /api/v1/load-balancer/health-check                         403     403   403    403       403
POST   /api/v1/auth/register                                      201     201   201    201       201
POST   /api/v1/auth/login                                         200     200   200    200       200
POST   /api/v1/auth/logout                                        204     204   204    204       204
GET    /api/v1/auth/me                                            200     200   200    200       200
POST   /api/v1/auth/password                                      204     204   204    204       204
POST   /api/v1/auth/token                                         200     200   200    200       200
GET    /api/v1/auth/sessions                                      200     200   200    200       200
DELETE /api/v1/auth/sessions/{session_id}                         204     204   204    204       404
GET    /api/v1/api-keys                                           200     200   403    403       200
POST   /api/v1/api-keys                                           201     201   403    403       201
GET    /api/v1/api-keys/{key_id}                                  200     200   403    403       404
DELETE /api/v1/api-keys/{key_id}                                  204     403   403    403       404
GET    /api/v1/members                                            200     403   403    403       200
POST   /api/v1/members                                            201     403   403    403       201
GET    /api/v1/members/{member_id}                                200     403   403    403       404
PATCH  /api/v1/members/{member_id}                                200     403   403    403       404
DELETE /api/v1/members/{member_id}                                204     403   403    403       404
POST   /api/v1/members/{member_id}/password                       204     403   403    403       404
GET    /api/v1/organization                                       200     200   200    200       200
PATCH  /api/v1/organization                                       200     403   403    403       200
GET    /api/v1/audit-events                                       200     200   403    403       200
GET    /api/v1/events                                             200     200   403    403       200
GET    /api/v1/dashboard                                          200     200   200    200       200
GET    /api/v1/reports/aging                                      200     200   200    200       200
GET    /api/v1/reports/rent-roll                                  200     200   200    200       200
POST   /api/v1/billing/run                                        200     200   403    403       200
GET    /api/v1/properties                                         200     200   200    200       200
POST   /api/v1/properties                                         201     201   403    403       201
GET    /api/v1/properties/{property_id}                           200     200   200    200       404
PATCH  /api/v1/properties/{property_id}                           200     200   403    403       404
DELETE /api/v1/properties/{property_id}                           204     204   403    403       404
GET    /api/v1/properties/{property_id}/units                     200     200   200    200       404
POST   /api/v1/properties/{property_id}/units                     201     201   403    403       404
GET    /api/v1/units                                              200     200   200    200       200
GET    /api/v1/units/{unit_id}                                    200     200   200    200       404
PATCH  /api/v1/units/{unit_id}                                    200     200   403    403       404
DELETE /api/v1/units/{unit_id}                                    204     204   403    403       404
GET    /api/v1/tenants                                            200     200   200    200       200
POST   /api/v1/tenants                                            201     201   403    403       201
GET    /api/v1/tenants/{tenant_id}                                200     200   200    200       404
PATCH  /api/v1/tenants/{tenant_id}                                200     200   403    403       404
DELETE /api/v1/tenants/{tenant_id}                                204     204   403    403       404
GET    /api/v1/leases                                             200     200   200    200       200
POST   /api/v1/leases                                             201     201   403    403       422
GET    /api/v1/leases/{lease_id}                                  200     200   200    200       404
PATCH  /api/v1/leases/{lease_id}                                  200     200   403    403       404
POST   /api/v1/leases/{lease_id}/activate                         200     200   403    403       404
POST   /api/v1/leases/{lease_id}/terminate                        200     200   403    403       404
POST   /api/v1/leases/{lease_id}/renew                            201     201   403    403       404
GET    /api/v1/leases/{lease_id}/ledger                           200     200   200    200       404
GET    /api/v1/leases/{lease_id}/deposit-statement                200     200   200    200       404
POST   /api/v1/leases/{lease_id}/deposit-disposition              201     201   403    403       404
POST   /api/v1/leases/{lease_id}/charges                          201     201   403    403       404
POST   /api/v1/leases/{lease_id}/credits                          201     201   403    403       404
POST   /api/v1/leases/{lease_id}/payments                         201     201   403    403       404
GET    /api/v1/leases/{lease_id}/recurring-charges                200     200   200    200       404
POST   /api/v1/leases/{lease_id}/recurring-charges                201     201   403    403       404
PATCH  /api/v1/leases/{lease_id}/recurring-charges/{charge_id}    200     200   403    403       404
DELETE /api/v1/leases/{lease_id}/recurring-charges/{charge_id}    204     204   403    403       404
GET    /api/v1/leases/{lease_id}/rent-changes                     200     200   200    200       404
POST   /api/v1/leases/{lease_id}/rent-changes                     201     201   403    403       404
DELETE /api/v1/leases/{lease_id}/rent-changes/{change_id}         204     204   403    403       404
POST   /api/v1/ledger-entries/{entry_id}/reverse                  201     201   403    403       404
GET    /api/v1/maintenance-requests                               200     200   200    200       200
POST   /api/v1/maintenance-requests                               201     201   201    403       422
GET    /api/v1/maintenance-requests/{request_id}                  200     200   200    200       404
PATCH  /api/v1/maintenance-requests/{request_id}                  200     200   200    403       404
DELETE /api/v1/maintenance-requests/{request_id}                  204     204   403    403       404
POST   /api/v1/maintenance-requests/{request_id}/transition       200     200   200    403       404
GET    /api/v1/maintenance-requests/{request_id}/comments         200     200   200    200       404
POST   /api/v1/maintenance-requests/{request_id}/comments         201     201   201    403       404
GET    /api/v1/webhooks                                           200     200   403    403       200
POST   /api/v1/webhooks                                           201     201   403    403       201
GET    /api/v1/webhooks/{webhook_id}                              200     200   403    403       404
PATCH  /api/v1/webhooks/{webhook_id}                              200     200   403    403       404
DELETE /api/v1/webhooks/{webhook_id}                              204     204   403    403       404
GET    /api/v1/webhooks/{webhook_id}/deliveries                   200     200   403    403       404
POST   /api/v1/webhooks/{webhook_id}/redeliver                    202     202   403    403       404
POST   /api/v1/webhooks/{webhook_id}/rotate-secret                200     200   403    403       404
POST   /api/v1/tenants/{tenant_id}/invitations                    201     201   201    403       404
DELETE /api/v1/tenants/{tenant_id}/access                         204     204   403    403       404
POST   /api/v1/invitations/accept                                 201     201   201    201       201
GET    /api/v1/owners                                             200     200   200    200       200
POST   /api/v1/owners                                             201     201   403    403       201
GET    /api/v1/owners/{owner_id}                                  200     200   200    200       404
PATCH  /api/v1/owners/{owner_id}                                  200     200   403    403       404
DELETE /api/v1/owners/{owner_id}                                  204     204   403    403       404
GET    /api/v1/owners/{owner_id}/properties                       200     200   200    200       404
GET    /api/v1/owners/{owner_id}/payouts                          200     200   200    200       404
POST   /api/v1/owners/{owner_id}/payouts                          201     201   403    403       404
POST   /api/v1/owners/{owner_id}/payouts/{payout_id}/reverse      201     201   403    403       404
GET    /api/v1/owners/{owner_id}/statements/{month}               200     200   200    200       404
GET    /api/v1/properties/{property_id}/ownership                 200     200   200    200       404
PUT    /api/v1/properties/{property_id}/ownership                 200     200   403    403       404
GET    /api/v1/vendors                                            200     200   200    200       200
POST   /api/v1/vendors                                            201     201   201    403       201
GET    /api/v1/vendors/{vendor_id}                                200     200   200    200       404
PATCH  /api/v1/vendors/{vendor_id}                                200     200   200    403       404
DELETE /api/v1/vendors/{vendor_id}                                204     204   403    403       404
POST   /api/v1/maintenance-requests/{request_id}/work-orders      201     201   201    403       404
GET    /api/v1/work-orders                                        200     200   200    200       200
GET    /api/v1/work-orders/{work_order_id}                        200     200   200    200       404
PATCH  /api/v1/work-orders/{work_order_id}                        200     200   200    403       404
POST   /api/v1/work-orders/{work_order_id}/transition             200     200   200    403       404
GET    /api/v1/bills                                              200     200   200    200       200
POST   /api/v1/bills                                              201     201   201    403       422
GET    /api/v1/bills/{bill_id}                                    200     200   200    200       404
PATCH  /api/v1/bills/{bill_id}                                    200     200   200    403       404
POST   /api/v1/bills/{bill_id}/void                               200     200   403    403       404
GET    /api/v1/bills/{bill_id}/payments                           200     200   200    200       404
POST   /api/v1/bills/{bill_id}/payments                           201     201   403    403       404
POST   /api/v1/bills/{bill_id}/payments/{payment_id}/reverse      201     201   403    403       404
GET    /api/v1/reports/property-pl                                200     200   200    200       200
"""

# The operations open to residents: (resident, other_org_resident). Every other operation is
# 404 for both. Open to anyone (no organization data), or to every signed-in person (their
# own session and password), then what issue 16 gives a resident: their leases, ledger and
# deposit, and maintenance requests for their units, which they open and comment on. The
# residents branch owns the final word: the merger checks these against it.
RESIDENT: dict[str, tuple[int, int]] = {
    "GET /alive": (200, 200),
    "GET /health": (200, 200),
    "GET /ready": (200, 200),
    "GET /metrics": (200, 200),
    "GET /api/v1/load-balancer/health": (200, 200),
    "GET /api/v1/load-balancer/metrics": (200, 200),
    "GET /api/v1/load-balancer/config": (403, 403),
    "GET /api/v1/load-balancer/instances": (403, 403),
    "POST /api/v1/load-balancer/drain": (403, 403),
    "POST /api/v1/load-balancer/health-check": (403, 403),
    "POST /api/v1/auth/register": (201, 201),
    "POST /api/v1/auth/login": (200, 200),
    "POST /api/v1/auth/logout": (204, 204),
    "GET /api/v1/auth/me": (200, 200),
    "POST /api/v1/auth/password": (204, 204),
    "POST /api/v1/auth/token": (200, 200),
    "GET /api/v1/auth/sessions": (200, 200),
    "DELETE /api/v1/auth/sessions/{session_id}": (204, 404),
    "GET /api/v1/leases": (200, 200),
    "GET /api/v1/leases/{lease_id}": (200, 404),
    "GET /api/v1/leases/{lease_id}/ledger": (200, 404),
    "GET /api/v1/leases/{lease_id}/deposit-statement": (200, 404),
    "GET /api/v1/maintenance-requests": (200, 200),
    "POST /api/v1/maintenance-requests": (201, 422),
    "GET /api/v1/maintenance-requests/{request_id}": (200, 404),
    "GET /api/v1/maintenance-requests/{request_id}/comments": (200, 404),
    "POST /api/v1/maintenance-requests/{request_id}/comments": (201, 404),
    "POST /api/v1/invitations/accept": (201, 201),
}


def parse(table: str) -> dict[str, dict[str, int]]:
    """{"METHOD /path": {column: status}} from TABLE (and the resident columns)."""
    rows: dict[str, dict[str, int]] = {}
    lines = [line.split("#")[0].split() for line in table.strip().splitlines()]
    header, body = lines[0], lines[1:]
    assert tuple(header[1:]) == COLUMNS, header
    for cells in body:
        operation = f"{cells[0]} {cells[1]}"
        assert operation not in rows, f"{operation} is written down twice"
        assert len(cells) == 2 + len(COLUMNS), f"{operation}: one status per column"
        rows[operation] = dict(zip(COLUMNS, map(int, cells[2:]), strict=True))
        rows[operation].update(
            zip(RESIDENT_COLUMNS, RESIDENT.get(operation, (404, 404)), strict=True)
        )
    stray = set(RESIDENT) - set(rows)
    assert not stray, f"RESIDENT names operations TABLE does not: {sorted(stray)}"
    return rows


EXPECTED = parse(TABLE)
