"""No secret reaches a log: not a private key, a commitment's opening, a draw seed before or after its
reveal, a webhook secret or a request signature, through a whole session with refusals along the way."""

import logging

import httpx
import pytest

from notary.access import PrincipalKey, SignedRequests
from tests.hub.conftest import MAIN, SUPERVISOR, Stack, Station, identity, setup_session


def test_no_secret_reaches_a_log(stack: Stack, caplog: pytest.LogCaptureFixture,
                                 capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    st = stack
    setup_session(st)
    committed = st.call("POST", "/sessions/S-1/draws", {"criteria": {"specialty": "房屋建筑工程"}, "count": 2}, 201)
    drawn = st.call("POST", f"/draws/{committed['draw_id']}/execute")
    station = Station(st, MAIN)
    expert = drawn["selected"][0]
    # A failing check-in too: errors are where secrets leak most often.
    st.call("POST", "/sessions/S-1/checkins", {"expert_id": expert, "checkin_leaf": 10_000}, 422)
    station.check_in("S-1", expert)
    secret = "webhook-secret-" + "q" * 24
    st.as_key(SUPERVISOR).call("POST", "/subscriptions",
                               {"project_id": "SD-2026-JN-0417", "url": "http://127.0.0.1:9/x", "secret": secret}, 403)
    signed = st.api.build_request("GET", "/venues")
    SignedRequests(PrincipalKey.generate("hub-operator-1")).sign(signed)
    assert httpx.Client().send(signed).status_code == 401  # a forged signature, refused and perhaps logged
    logs = caplog.text + "".join(capfd.readouterr())
    secrets = [identity(expert), drawn["revealed_seed"], secret, signed.headers["signature"].split(":")[1]]
    for path in st.hub.config.data_dir.glob("*.key"):
        secrets.append(path.read_text().splitlines()[1])
    for path in st.notary.config.data_dir.glob("*.key"):
        secrets.append(path.read_text().splitlines()[1])
    for value in secrets:
        assert value not in logs, f"a secret ({value[:12]}…) appears in the logs"
