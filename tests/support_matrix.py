"""The role matrix's world: organization A with one of everything and a signed-in person per
role, organization B's owner (and resident) to stay out of it, and factories for throwaway
records that a destructive cell may use up.

Reusable by other tests: `build_matrix_world` gives a complete organization;
`resident_account` signs a tenant in as a resident (once the role exists).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from litestar.testing import TestClient

from haven.models import organization as organization_model
from support import Account, add_member, create_property, create_tenant, create_unit, register
from support_leases import active_lease, charge, draft_lease, key, pay
from support_maintenance import create_request

API = "/api/v1"
PUBLIC_WEBHOOK = "https://93.184.215.14/haven"  # an IP literal: judged without DNS, never called
# Residents exist once the role does: in ROLES, or (as the residents branch has it) next to
# the staff roles in MEMBER_ROLES.
RESIDENTS = "resident" in (
    *organization_model.ROLES,
    *getattr(organization_model, "MEMBER_ROLES", ()),
)


def unique() -> str:
    return uuid.uuid4().hex[:10]


def ok(response: Any, *statuses: int) -> dict[str, Any]:
    assert response.status_code in (statuses or (200, 201)), response.text
    return dict(response.json()) if response.content else {}


def login(client: TestClient[Any], email: str, password: str) -> Account:
    """A new session of an existing user (its own token and CSRF)."""
    response = client.post(f"{API}/auth/login", json={"email": email, "password": password})
    client.cookies.clear()
    body = ok(response, 200)
    return Account(
        email=email,
        password=password,
        token=body["accessToken"],
        csrf=body["csrfToken"],
        session_cookie=response.cookies["haven_session"],
        organization_id=body["organization"]["id"],
        user_id=body["user"]["id"],
        body=body,
    )


def session_id(client: TestClient[Any], account: Account) -> str:
    """The public id of `account`'s own session (as GET /auth/sessions names it)."""
    items = ok(client.get(f"{API}/auth/sessions", headers=account.headers), 200)["items"]
    return str(next(s["id"] for s in items if s["current"]))


def resident_account(client: TestClient[Any], staff: Account, tenant_id: str) -> Account:
    """Sign tenant `tenant_id` (who has an email and a current lease) in as a resident: staff
    invite them, and accepting the invitation with a password signs them in (issue 16). Only
    once the role exists."""
    assert RESIDENTS, "the resident role does not exist yet"
    invited = client.post(
        f"{API}/tenants/{tenant_id}/invitations", headers={**staff.headers, **key()}, json={}
    )
    token = ok(invited, 201)["token"]
    email = ok(client.get(f"{API}/tenants/{tenant_id}", headers=staff.headers), 200)["email"]
    password = f"resident password {unique()}"
    accepted = client.post(f"{API}/invitations/accept", json={"token": token, "password": password})
    client.cookies.clear()
    ok(accepted, 200, 201)
    return login(client, email, password)


@dataclass
class MatrixWorld:
    """Organization A (one of everything; a person per role) and organization B."""

    client: TestClient[Any]
    accounts: dict[str, Account]  # column -> the person who calls
    ids: dict[str, str]  # organization A's shared records, by path-parameter name
    other_ids: dict[str, str]  # organization B's own records
    secrets: set[str] = field(default_factory=set)  # A's ids that B must never see
    spares: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def owner(self) -> Account:
        return self.accounts["owner"]

    def fresh(self, what: str, column: str, *, refused: bool = False) -> dict[str, str]:
        """Throwaway records of organization A for one cell (FRESH names the kinds). A cell
        that must be refused shares one spare set per kind: it changes nothing (if it did, that
        cell fails, and the next refused cells may fail after it)."""
        if not refused or what == "session":
            return FRESH[what](self, column)
        if what not in self.spares:
            self.spares[what] = FRESH[what](self, column)
        return self.spares[what]

    def home(self, column: str) -> Account:
        """Organization A's person a cell's self-scoped records belong to (a session):
        the caller itself in A, A's owner (or resident) for organization B's columns."""
        if column == "other_org":
            return self.owner
        if column == "other_org_resident":
            return self.accounts["resident"]
        return self.accounts[column]


def _created(response: Any) -> str:
    return str(ok(response, 201)["id"])


def build_matrix_world(client: TestClient[Any]) -> MatrixWorld:
    owner = register(client, organization="Matrix Homes")
    accounts = {"owner": owner}
    for role in ("manager", "staff", "viewer"):
        accounts[role] = add_member(client, owner, role)
    prop = create_property(client, owner, name="Matrix Court")
    unit = create_unit(client, owner, prop["id"])
    tenant = create_tenant(client, owner, lastName="Matrixson")
    # Month-to-month: the resident's access (a current lease) does not end with the calendar.
    lease = active_lease(
        client,
        owner,
        unit_id=unit["id"],
        tenant_ids=[tenant["id"]],
        chargeDeposit=True,
        endDate=None,
    )
    entry = charge(client, owner, lease["id"], 4500, "2026-02-01", kind="utility")
    assert pay(client, owner, lease["id"], 1000).status_code == 201
    request = create_request(client, owner, prop["id"], unitId=unit["id"], title="Matrix tap")
    comment = _created(
        client.post(
            f"{API}/maintenance-requests/{request['id']}/comments",
            headers=owner.headers,
            json={"body": "Plumber booked"},
        )
    )
    key_id = _created(
        client.post(
            f"{API}/api-keys", headers=owner.headers, json={"name": "Matrix", "role": "viewer"}
        )
    )
    webhook = _created(
        client.post(f"{API}/webhooks", headers=owner.headers, json={"url": PUBLIC_WEBHOOK})
    )
    events = ok(client.get(f"{API}/events", headers=owner.headers, params={"limit": 1}), 200)
    rental_owner = _owner(client, owner)
    ok(
        client.put(
            f"{API}/properties/{prop['id']}/ownership",
            headers=owner.headers,
            json={
                "effectiveFrom": "2026-01-01",
                "shares": [{"ownerId": rental_owner, "basisPoints": 10000}],
            },
        ),
        200,
    )
    payout = _payout(client, owner, rental_owner)
    vendor = _vendor(client, owner)
    work_order = _work_order(client, owner, request["id"], vendor)
    bill = _bill(client, owner, vendor, prop["id"])
    bill_payment = _bill_payment(client, owner, bill)
    ids = {
        "property_id": prop["id"],
        "unit_id": unit["id"],
        "tenant_id": tenant["id"],
        "lease_id": lease["id"],
        "entry_id": entry["id"],
        "request_id": request["id"],
        "comment_id": comment,
        "member_id": accounts["viewer"].user_id,
        "key_id": key_id,
        "webhook_id": webhook,
        "event_id": events["items"][0]["id"],
        "owner_id": rental_owner,
        "vendor_id": vendor,
        "work_order_id": work_order,
        "bill_id": bill,
        "payment_id": bill_payment,
        "payout_id": payout,
        "month": "2026-10",
    }
    other = register(client, organization="Elsewhere Estates")
    accounts["other_org"] = other
    other_prop = create_property(client, other, name="Elsewhere Tower")
    other_unit = create_unit(client, other, other_prop["id"])
    other_tenant = create_tenant(client, other, lastName="Elsewhere")
    active_lease(
        client, other, unit_id=other_unit["id"], tenant_ids=[other_tenant["id"]], endDate=None
    )
    if RESIDENTS:
        accounts["resident"] = resident_account(client, owner, tenant["id"])
        accounts["other_org_resident"] = resident_account(client, other, other_tenant["id"])
    secrets = {v for k, v in ids.items() if k not in ("event_id", "month")} | {
        a.user_id for c, a in accounts.items() if c not in ("other_org", "other_org_resident")
    }
    return MatrixWorld(
        client=client,
        accounts=accounts,
        ids=ids,
        other_ids={"property_id": other_prop["id"], "unit_id": other_unit["id"]},
        secrets=secrets,
    )


# -- throwaway records, one set per cell -------------------------------------------------------


def _leased_tenant(w: MatrixWorld) -> str:
    """A tenant with an email on a current (month-to-month) lease of a new unit: invitable."""
    tenant = create_tenant(w.client, w.owner, lastName="Invitee")
    active_lease(w.client, w.owner, unit_id=_unit(w), tenant_ids=[tenant["id"]], endDate=None)
    return str(tenant["id"])


def _invitation(w: MatrixWorld) -> dict[str, str]:
    invited = w.client.post(
        f"{API}/tenants/{_leased_tenant(w)}/invitations",
        headers={**w.owner.headers, **key()},
        json={},
    )
    return {"token": ok(invited, 201)["token"]}


def _resident_tenant(w: MatrixWorld) -> dict[str, str]:
    tenant_id = _leased_tenant(w)
    resident_account(w.client, w.owner, tenant_id)
    w.client.cookies.clear()
    return {"tenant_id": tenant_id}


def _vendor(client: TestClient[Any], account: Account) -> str:
    return _created(
        client.post(
            f"{API}/vendors",
            headers=account.headers,
            json={
                "name": "Matrix Plumbing",
                "trade": "plumbing",
                "insuranceExpiresOn": "2099-12-31",
            },
        )
    )


def _work_order(client: TestClient[Any], account: Account, request_id: str, vendor: str) -> str:
    return _created(
        client.post(
            f"{API}/maintenance-requests/{request_id}/work-orders",
            headers={**account.headers, **key()},
            json={"title": "Matrix washer", "estimate": 9000, "vendorId": vendor},
        )
    )


def _bill(client: TestClient[Any], account: Account, vendor: str, property_id: str) -> str:
    return _created(
        client.post(
            f"{API}/bills",
            headers={**account.headers, **key()},
            json={
                "vendorId": vendor,
                "propertyId": property_id,
                "amount": 20000,
                "issuedOn": "2026-10-01",
                "dueOn": "2026-10-31",
            },
        )
    )


def _bill_payment(client: TestClient[Any], account: Account, bill: str) -> str:
    paid = client.post(
        f"{API}/bills/{bill}/payments",
        headers={**account.headers, **key()},
        json={"amount": 1000, "method": "check"},
    )
    return str(ok(paid, 201)["payment"]["id"])


def _paid_bill(w: MatrixWorld) -> dict[str, str]:
    bill = _bill(w.client, w.owner, w.ids["vendor_id"], w.ids["property_id"])
    return {"bill_id": bill, "payment_id": _bill_payment(w.client, w.owner, bill)}


def _owner(client: TestClient[Any], account: Account) -> str:
    return _created(
        client.post(
            f"{API}/owners", headers=account.headers, json={"kind": "person", "name": "Rhea Matrix"}
        )
    )


def _payout(client: TestClient[Any], account: Account, owner_id: str) -> str:
    return _created(
        client.post(
            f"{API}/owners/{owner_id}/payouts",
            headers={**account.headers, "Idempotency-Key": f"matrix-{unique()}"},
            json={"amount": 2500, "paidOn": "2026-10-05", "reference": "matrix"},
        )
    )


def _unit(w: MatrixWorld) -> str:
    return str(create_unit(w.client, w.owner, w.ids["property_id"])["id"])


def _active(w: MatrixWorld, **changes: Any) -> str:
    tenant = create_tenant(w.client, w.owner)["id"]
    return str(
        active_lease(w.client, w.owner, unit_id=_unit(w), tenant_ids=[tenant], **changes)["id"]
    )


def _ended_with_deposit(w: MatrixWorld) -> str:
    lease = _active(w, deposit=200000, chargeDeposit=True)
    assert pay(w.client, w.owner, lease, 200000).status_code == 201
    ok(
        w.client.post(
            f"{API}/leases/{lease}/terminate", headers=w.owner.headers, json={"date": "2026-03-31"}
        ),
        200,
    )
    return lease


def _recurring(w: MatrixWorld) -> dict[str, str]:
    lease = w.ids["lease_id"]
    body = {"kind": "parking", "amount": 5000, "startDate": "2026-11-01"}
    path = f"{API}/leases/{lease}/recurring-charges"
    return {
        "lease_id": lease,
        "charge_id": _created(w.client.post(path, headers=w.owner.headers, json=body)),
    }


def _rent_change(w: MatrixWorld) -> dict[str, str]:
    lease = _active(w)
    body = {"effectiveDate": "2026-12-01", "rent": 130000}
    path = f"{API}/leases/{lease}/rent-changes"
    return {
        "lease_id": lease,
        "change_id": _created(w.client.post(path, headers=w.owner.headers, json=body)),
    }


def _second_session(w: MatrixWorld, column: str) -> dict[str, str]:
    home = w.home(column)
    return {"session_id": session_id(w.client, login(w.client, home.email, home.password))}


def _member(w: MatrixWorld) -> str:
    body = {"email": f"spare-{unique()}@example.com", "name": "Spare", "role": "viewer",
            "password": "member password 1"}  # fmt: skip
    return _created(w.client.post(f"{API}/members", headers=w.owner.headers, json=body))


def _key(w: MatrixWorld) -> str:
    body = {"name": f"throwaway {unique()}", "role": "viewer"}
    return _created(w.client.post(f"{API}/api-keys", headers=w.owner.headers, json=body))


def _webhook(w: MatrixWorld) -> str:
    return _created(
        w.client.post(f"{API}/webhooks", headers=w.owner.headers, json={"url": PUBLIC_WEBHOOK})
    )


FRESH: dict[str, Callable[[MatrixWorld, str], dict[str, str]]] = {
    "property": lambda w, c: {"property_id": create_property(w.client, w.owner)["id"]},
    "unit": lambda w, c: {"unit_id": _unit(w)},
    "tenant": lambda w, c: {"tenant_id": create_tenant(w.client, w.owner)["id"]},
    "draft_lease": lambda w, c: {
        "lease_id": draft_lease(w.client, w.owner, unit_id=_unit(w))["id"]
    },
    "active_lease": lambda w, c: {"lease_id": _active(w)},
    "ended_lease": lambda w, c: {"lease_id": _ended_with_deposit(w)},
    "recurring_charge": lambda w, c: _recurring(w),
    "rent_change": lambda w, c: _rent_change(w),
    "entry": lambda w, c: {
        "entry_id": charge(w.client, w.owner, w.ids["lease_id"], 700, "2026-03-01")["id"]
    },
    "request": lambda w, c: {
        "request_id": create_request(w.client, w.owner, w.ids["property_id"])["id"]
    },
    "member": lambda w, c: {"member_id": _member(w)},
    "key": lambda w, c: {"key_id": _key(w)},
    "webhook": lambda w, c: {"webhook_id": _webhook(w)},
    "owner": lambda w, c: {"owner_id": _owner(w.client, w.owner)},
    "leased_tenant": lambda w, c: {"tenant_id": _leased_tenant(w)},
    "vendor": lambda w, c: {"vendor_id": _vendor(w.client, w.owner)},
    "work_order": lambda w, c: {
        "work_order_id": _work_order(w.client, w.owner, w.ids["request_id"], w.ids["vendor_id"])
    },
    "bill": lambda w, c: {
        "bill_id": _bill(w.client, w.owner, w.ids["vendor_id"], w.ids["property_id"])
    },
    "bill_payment": lambda w, c: _paid_bill(w),
    "invitation": lambda w, c: _invitation(w),
    "resident_tenant": lambda w, c: _resident_tenant(w),
    "payout": lambda w, c: {"payout_id": _payout(w.client, w.owner, w.ids["owner_id"])},
    "session": _second_session,
}


def fresh_actor(w: MatrixWorld, column: str) -> Account:
    """A new person in the caller's place (same role, same organization), for cells that
    change the caller's own credentials (a password change ends the other sessions)."""
    if column in ("owner", "manager", "staff", "viewer"):
        return add_member(w.client, w.owner, column)
    if column == "other_org":
        return add_member(w.client, w.accounts["other_org"], "owner")
    # A resident signs in while a lease of theirs is current: a tenant with an active lease.
    boss = w.owner if column == "resident" else w.accounts["other_org"]
    home = w.ids["property_id"] if column == "resident" else w.other_ids["property_id"]
    tenant = create_tenant(w.client, boss)["id"]
    unit = create_unit(w.client, boss, home)["id"]
    active_lease(w.client, boss, unit_id=unit, tenant_ids=[tenant], endDate=None)
    return resident_account(w.client, boss, tenant)


def fresh_session(w: MatrixWorld, column: str) -> Account:
    """Another session of the caller, for cells that end their own session (logout)."""
    caller = w.accounts[column]
    return login(w.client, caller.email, caller.password)
