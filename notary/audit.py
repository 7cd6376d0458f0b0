"""A full audit of a notary's log: every leaf, every stored tree node, every anchor on the ledger.

It reads the database as an outsider would distrust it: entries must hash to their leaves, leaves must
be numbered without gaps and carry their own number, each project's records must be numbered without
gaps, submitters' signatures must hold, the stored tree nodes must be the ones the leaves give, and the
roots must equal every checkpoint the ledger anchored, and the stored project heads (what checkpoints
commit to) must be the ones the leaves give. Any change, deletion, swap or insertion of a row shows up as
one of these.
"""

from sqlalchemy import select

from anchors.ledger import Ledger
from notary import store
from notary.log import EvidenceLog
from notary.tree import CompactRange
from verifier.anchor import Anchor
from verifier.entry import parse_entry, verify_entry_signature
from verifier.errors import VerificationError
from verifier.heads import ProjectHead
from verifier.merkle import leaf_hash
from verifier.signatures import PublicKey, load_public_key

PAGE = 5000
MAX_PROBLEMS = 50


def audit_log(evidence: EvidenceLog, ledger: Ledger) -> list[str]:
    problems: list[str] = []
    keys: dict[str, PublicKey] = {}
    with evidence.engine.connect() as conn:
        for row in conn.execute(select(store.submitters)):
            keys[row.submitter_id] = load_public_key(row.public_key)
        stored_nodes = {row.id: bytes(row.hash) for row in conn.execute(select(store.nodes))}
    anchors = {a.size: a.root for a in _all_anchors(ledger, evidence.log_id)}
    heads_size, stored_heads = evidence.stored_heads()
    if heads_size == 0:
        problems += _heads_problems(stored_heads, {}, {}, 0)
    tree = CompactRange()
    project_next: dict[str, int] = {}
    project_last: dict[str, int] = {}
    expected_seq = 0
    after = -1
    while len(problems) < MAX_PROBLEMS:
        with evidence.engine.connect() as conn:
            rows = conn.execute(
                select(store.leaves).where(store.leaves.c.seq > after).order_by(store.leaves.c.seq).limit(PAGE)
            ).all()
        if not rows:
            break
        for row in rows:
            after = row.seq
            entry_bytes = bytes(row.entry)
            if row.seq != expected_seq:
                problems.append(f"leaves {expected_seq}..{row.seq - 1} are missing")
                expected_seq = row.seq
            lh = leaf_hash(entry_bytes)
            if bytes(row.leaf_hash) != lh:
                problems.append(f"leaf {row.seq}: stored leaf hash is not the hash of its entry")
            try:
                entry = parse_entry(entry_bytes)
                if entry.leaf_index != row.seq:
                    problems.append(f"leaf {row.seq}: its entry says it is leaf {entry.leaf_index}")
                if entry.record_hash != bytes(row.record_hash):
                    problems.append(f"leaf {row.seq}: record hash column differs from its entry")
                want = project_next.get(entry.project_id, 0)
                if entry.project_seq != want:
                    problems.append(
                        f"leaf {row.seq}: project {entry.project_id} record #{entry.project_seq}, expected #{want}"
                    )
                project_next[entry.project_id] = entry.project_seq + 1
                project_last[entry.project_id] = row.seq
                key = keys.get(entry.submitter)
                if key is None:
                    problems.append(f"leaf {row.seq}: submitter {entry.submitter} is not registered")
                else:
                    verify_entry_signature(entry, key)
            except VerificationError as exc:
                problems.append(f"leaf {row.seq}: {exc}")
            for (level, index), h in tree.append(lh)[1:]:  # level 0 is the leaf hash checked above
                if stored_nodes.get(store.node_id(level, index)) != h:
                    problems.append(f"tree node ({level}, {index}) over leaf {row.seq} differs from the leaves")
            expected_seq += 1
            if tree.size == heads_size:
                problems += _heads_problems(stored_heads, project_next, project_last, heads_size)
            if tree.size in anchors and tree.root() != anchors[tree.size]:
                problems.append(f"root at anchored size {tree.size} differs from the ledger's anchor")
    if tree.size < max(anchors, default=0):
        problems.append(f"log has {tree.size} leaves but the ledger anchored size {max(anchors)}: truncated")
    return problems[:MAX_PROBLEMS]


def _all_anchors(ledger: Ledger, log_id: str) -> list[Anchor]:
    found: list[Anchor] = []
    start = 0
    while True:
        page = ledger.anchors(log_id, from_size=start, limit=1000)
        found += page
        if len(page) < 1000:
            return found
        start = page[-1].size + 1


def _heads_problems(stored: list[ProjectHead], project_next: dict[str, int], project_last: dict[str, int],
                    size: int) -> list[str]:
    """The stored project heads against the ones the first `size` leaves give."""
    problems: list[str] = []
    found = {h.project_id: h for h in stored}
    for project in sorted(set(found) | set(project_next)):
        want = (project_next.get(project, 0), project_last.get(project, -1))
        head = found.get(project)
        got = (0, -1) if head is None else (head.records, head.last_leaf)
        if got != want:
            problems.append(f"project {project}: stored head says {got[0]} records, last leaf {got[1]}; the first "
                            f"{size} leaves give {want[0]} records, last leaf {want[1]}")
    return problems
