"""``ChameleonClient``: every route of the HTTP API as a typed method.

One client speaks for one bearer token: the admin's, the auditor's or an actor's. Errors
come back as the project's exceptions (``NotFoundError``, ``ConcurrencyError``, ...) with
the server's problem document attached as ``problem``. Where a route takes an instance,
workflow or role, a name or an id is accepted.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel

from chameleon_workflow.client.models import (
    UOW,
    Actor,
    ActorCreated,
    Checkpoint,
    Created,
    Health,
    HistoryEntry,
    Instance,
    LogPage,
    Page,
    RoleAssigned,
    Verification,
    Workflow,
)
from chameleon_workflow.client.transport import AnswerLost, RetryPolicy, Transport
from chameleon_workflow.errors import ConfigurationError, ServerUnreachableError

M = TypeVar("M", bound=BaseModel)
Ref = str | uuid.UUID
ActorType = Literal["HUMAN", "AI_AGENT", "SYSTEM"]

URL_VARIABLE = "CHAMELEON_SERVER_URL"
TOKEN_VARIABLE = "CHAMELEON_ACTOR_TOKEN"  # noqa: S105 - the variable's name, not a token


def _params(**given: Any) -> dict[str, Any]:
    """Drop the parameters not given; render times as ISO 8601."""
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in given.items()
        if value is not None
    }


class ChameleonClient:
    """A typed client of the Chameleon HTTP API (synchronous; one token per client)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: Transport | None = None,
    ) -> None:
        """Talk to the server at ``base_url`` with ``token`` as the bearer token."""
        self.transport = transport or Transport(base_url, token, timeout_s=timeout_s, retry=retry)

    @classmethod
    def from_env(cls, **options: Any) -> ChameleonClient:
        """Build a client from CHAMELEON_SERVER_URL and CHAMELEON_ACTOR_TOKEN."""
        url = os.environ.get(URL_VARIABLE)
        if not url:
            raise ConfigurationError(f"{URL_VARIABLE} is not set (the server's base URL)")
        return cls(url, os.environ.get(TOKEN_VARIABLE) or None, **options)

    def close(self) -> None:
        """Close the client's connections."""
        self.transport.close()

    def __enter__(self) -> ChameleonClient:
        """Use the client in a ``with`` block; it is closed at the end."""
        return self

    def __exit__(self, *_: object) -> None:
        """Close the client."""
        self.close()

    # ---------------------------------------------------------------------- plumbing

    def _get(self, path: str, model: type[M], **params: Any) -> M:
        response = self.transport.call("GET", path, params=_params(**params), repeatable=True)
        return model.model_validate_json(response.content)

    def _post(self, path: str, model: type[M], body: Any = None, *, repeatable: bool = False) -> M:
        response = self.transport.call("POST", path, json=body, repeatable=repeatable)
        return model.model_validate_json(response.content)

    def _pages(self, path: str, model: type[M], **params: Any) -> Iterator[M]:
        cursor: str | None = None
        while True:
            query = _params(**params, cursor=cursor)
            body = self.transport.call("GET", path, params=query, repeatable=True).json()
            if isinstance(body, list):  # a server from before paging answers one plain list
                yield from (model.model_validate(item) for item in body)
                return
            page = Page[Any].model_validate(body)
            yield from (model.model_validate(item) for item in page.items)
            cursor = page.next_cursor
            if cursor is None:
                return

    # ------------------------------------------------------------------------- admin

    def create_instance(self, name: str, description: str | None = None) -> uuid.UUID:
        """Create an instance and return its id (admin)."""
        body = {"name": name, "description": description}
        return self._post("/instances", Created, body).id

    def import_workflow(self, instance: Ref, yaml_text: str) -> uuid.UUID:
        """Import a YAML workflow definition into an instance; return its id (admin)."""
        body = {"instance": str(instance), "yaml": yaml_text}
        return self._post("/workflows", Created, body).id

    def register_actor(
        self,
        instance_id: Ref,
        identity_key: str,
        name: str,
        actor_type: ActorType,
        capabilities: list[str] | dict[str, Any] | None = None,
    ) -> ActorCreated:
        """Register an actor; its token is in the answer only (admin)."""
        body = {
            "instance_id": str(instance_id),
            "identity_key": identity_key,
            "name": name,
            "actor_type": actor_type,
            "capabilities": capabilities,
        }
        return self._post("/actors", ActorCreated, body)

    def assign_role(self, actor_id: Ref, role: Ref) -> RoleAssigned:
        """Give an actor a role (name or id) of its instance (admin)."""
        return self._post(f"/actors/{actor_id}/roles", RoleAssigned, {"role": str(role)})

    def revoke_role(self, actor_id: Ref, role: Ref) -> None:
        """Take a role (name or id) away from an actor (admin)."""
        self.transport.call("DELETE", f"/actors/{actor_id}/roles/{role}", repeatable=True)

    def rotate_token(self, actor_id: Ref) -> ActorCreated:
        """Issue a new token for an actor; the old one stops working (admin)."""
        return self._post(f"/actors/{actor_id}/token", ActorCreated)

    def revoke_token(self, actor_id: Ref) -> None:
        """Revoke an actor's token at once, issuing none (admin)."""
        self.transport.call("DELETE", f"/actors/{actor_id}/token", repeatable=True)

    # -------------------------------------------------------------------------- work

    def create_uow(
        self, instance_id: Ref, workflow: Ref, attributes: Mapping[str, Any] | None = None
    ) -> uuid.UUID:
        """Start a root UOW of a workflow (name or id) and return its id."""
        body = {"workflow": str(workflow), "attributes": dict(attributes or {})}
        return self._post(f"/instances/{instance_id}/uows", Created, body).id

    def checkout(self, role: Ref) -> UOW | None:
        """Claim the oldest waiting UOW of a role the caller holds; None when none waits."""
        response = self.transport.call("POST", f"/roles/{role}/checkout")
        return None if response.status_code == 204 else UOW.model_validate_json(response.content)

    def submit(
        self,
        uow: UOW | Ref,
        attributes: Mapping[str, Any] | None = None,
        reasoning: str | None = None,
    ) -> UOW:
        """Finish the caller's step on a UOW it holds; return the UOW as routed onwards.

        Given the held ``UOW`` (as checkout or the last heartbeat returned it), a submit
        whose answer was lost is settled by reading the UOW back: still held by the caller
        at the same version, nothing happened and it is sent again; otherwise it is
        returned as it now is (its history tells who moved it).
        """
        body: dict[str, Any] = {"reasoning": reasoning}
        if attributes is not None:
            body["attributes"] = dict(attributes)
        uow_id = uow.uow_id if isinstance(uow, UOW) else uow
        try:
            return self._post(f"/uows/{uow_id}/submit", UOW, body)
        except AnswerLost:
            if not isinstance(uow, UOW):
                raise
            now = self.get_uow(uow.uow_id)
            unchanged = now.version == uow.version and now.held_by == uow.held_by
            if unchanged and now.status == "ACTIVE":
                return self._post(f"/uows/{uow_id}/submit", UOW, body)
            return now

    def fail(self, uow: UOW | Ref, reason: str) -> UOW:
        """Report a UOW the caller holds as failed; it goes to remediation."""
        uow_id = uow.uow_id if isinstance(uow, UOW) else uow
        return self._post(f"/uows/{uow_id}/fail", UOW, {"reason": reason})

    def heartbeat(self, uow: UOW | Ref) -> UOW:
        """Tell the server the caller still works on a UOW it holds."""
        uow_id = uow.uow_id if isinstance(uow, UOW) else uow
        return self._post(f"/uows/{uow_id}/heartbeat", UOW, repeatable=True)

    def remediate(
        self,
        uow_id: Ref,
        attributes: Mapping[str, Any] | None = None,
        to_interaction: Ref | None = None,
        reasoning: str | None = None,
    ) -> UOW:
        """Send a FAILED UOW back into the flow as PENDING (an actor holding EPSILON)."""
        body: dict[str, Any] = {"reasoning": reasoning}
        if attributes is not None:
            body["attributes"] = dict(attributes)
        if to_interaction is not None:
            body["to_interaction"] = str(to_interaction)
        return self._post(f"/uows/{uow_id}/remediate", UOW, body)

    # ------------------------------------------------------------------------- reads

    def get_uow(self, uow_id: Ref) -> UOW:
        """Return a UOW's current state."""
        return self._get(f"/uows/{uow_id}", UOW)

    def history(self, uow_id: Ref) -> list[HistoryEntry]:
        """Return a UOW's whole ledger in the order of record (every page)."""
        return list(self._pages(f"/uows/{uow_id}/history", HistoryEntry, limit=500))

    def uows(
        self,
        *,
        instance: Ref | None = None,
        workflow: Ref | None = None,
        status: Iterable[str] = (),
        attributes: Mapping[str, Any] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = 100,
    ) -> Iterator[UOW]:
        """Yield the UOWs that match every filter given, page after page."""
        pairs = [f"{key}={value}" for key, value in (attributes or {}).items()]
        return self._pages(
            "/uows",
            UOW,
            instance=None if instance is None else str(instance),
            workflow=None if workflow is None else str(workflow),
            status=list(status) or None,
            attribute=pairs or None,
            since=since,
            until=until,
            limit=page_size,
        )

    def instances(self, *, page_size: int = 100) -> Iterator[Instance]:
        """Yield the instances the caller may see."""
        return self._pages("/instances", Instance, limit=page_size)

    def get_instance(self, instance: Ref) -> Instance:
        """Return an instance by name or id."""
        return self._get(f"/instances/{instance}", Instance)

    def workflows(self, instance: Ref | None = None, *, page_size: int = 100) -> Iterator[Workflow]:
        """Yield the imported workflows (every version), of one instance if given."""
        where = None if instance is None else str(instance)
        return self._pages("/workflows", Workflow, instance=where, limit=page_size)

    def get_workflow(self, workflow: Ref) -> Workflow:
        """Return a workflow (name or id) with its roles (ids and names) and interactions."""
        return self._get(f"/workflows/{workflow}", Workflow)

    def actors(self, instance: Ref | None = None, *, page_size: int = 100) -> Iterator[Actor]:
        """Yield the actors the caller may see, of one instance if given."""
        where = None if instance is None else str(instance)
        return self._pages("/actors", Actor, instance=where, limit=page_size)

    def get_actor(self, actor_id: Ref) -> Actor:
        """Return one actor and the roles it holds."""
        return self._get(f"/actors/{actor_id}", Actor)

    # ------------------------------------------------------------------------- audit

    def verify_uow(self, uow_id: Ref) -> Verification:
        """Verify one UOW: attributes against its hash, its chain, sequences and head."""
        return self._get(f"/uows/{uow_id}/verify", Verification)

    def verify(self, instance_id: Ref | None = None) -> Verification:
        """Verify every UOW (of one instance if given)."""
        where = None if instance_id is None else str(instance_id)
        return self._get("/verify", Verification, instance_id=where)

    def logs(
        self,
        *,
        uow_id: Ref | None = None,
        log_type: str | None = None,
        instance: Ref | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> LogPage:
        """Return one page of interaction-log rows, newest first."""
        return self._get(
            "/logs",
            LogPage,
            uow_id=None if uow_id is None else str(uow_id),
            type=log_type,
            instance=None if instance is None else str(instance),
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )

    def latest_checkpoint(self) -> Checkpoint:
        """Return the newest signed checkpoint."""
        return self._get("/checkpoints/latest", Checkpoint)

    def health(self) -> Health:
        """Return the server's health (answers even when degraded)."""
        try:
            response = self.transport.http.get("/health")
        except httpx.HTTPError as exc:
            raise ServerUnreachableError(f"GET /health: {type(exc).__name__}: {exc}") from exc
        return Health.model_validate_json(response.content)
