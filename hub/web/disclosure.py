"""信息公开 for people: each project's public disclosure (the allow-list of `hub.workflows.public`), every
item linking its public proof. Anonymous; no record content is shown, only leaves and their proofs."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from hub import db
from hub.api.deps import get_hub
from hub.errors import NotFound
from hub.web.pages import current_session, render
from hub.workflows import proofs, public

router = APIRouter()


def public_leaves(disclosure: dict[str, Any]) -> set[int]:
    """Every leaf the public disclosure names: bookings, draws, archives, published misconduct."""
    leaves: set[int] = set()
    for x in disclosure["sessions"]:
        leaves.update(leaf for b in x["bookings"] for leaf in b["leaves"])
        leaves.update(d[k] for d in x["draws"] for k in ("commitment_leaf", "result_leaf") if d.get(k) is not None)
        if x["archive_leaf"] is not None:
            leaves.add(x["archive_leaf"])
    for m in disclosure["misconduct"]:
        if m["published_leaf"] is not None:
            leaves.add(m["published_leaf"])
    return leaves


@router.get("/public", name="public")
def public_page(request: Request) -> HTMLResponse:
    hub = get_hub(request)
    with hub.db() as s:
        projects = sorted(hub.projects(s) - {"registry"})
    return render(request, "public.html.j2", current_session(request),
                  projects=[public.disclosure(hub, p) for p in projects])


@router.get("/public/proof/{leaf_index}", name="public_proof")
def public_proof(request: Request, leaf_index: int) -> HTMLResponse:
    hub = get_hub(request)
    with hub.db() as s:
        row = s.get(db.EvidenceRow, leaf_index)
    if row is None or leaf_index not in public_leaves(public.disclosure(hub, row.project_id)):
        raise NotFound(f"leaf {leaf_index} is not among the published items of any project")
    proof = proofs.prove(hub, leaf_index, row.leaf_hash)
    return render(request, "proof.html.j2", current_session(request), row=row, proof=proof, public_view=True)
