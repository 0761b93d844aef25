import pytest

# --- the POS cast: a terminal activated through real HTTP (live_server) -------


@pytest.fixture
def shop(merchant):
    from tests.accounts.factories import ShopFactory

    return ShopFactory(merchant=merchant, latitude="31.230400", longitude="121.473700")


@pytest.fixture
def pos(live_server, shop, owner, tmp_path):
    """An activated TerminalClient of `merchant`'s shop (its state in a file,
    like a real POS)."""
    from apps.terminals.client import TerminalClient
    from apps.terminals.services import terminal_register

    _terminal, code = terminal_register(
        merchant=shop.merchant,
        shop=shop,
        serial_number="SN-PAY-1",
        model="P2",
        bind_radius_m=300,
        actor=owner,
    )
    client = TerminalClient(live_server.url, tmp_path / "pos.json")
    client.activate(code)
    return client


@pytest.fixture
def operator(merchant):
    """A cashier with a transaction password (PIN 135790)."""
    from tests.transactions.pos import staff_with_pin

    return staff_with_pin(merchant, "cashier")


@pytest.fixture
def supervisor(merchant):
    """A manager with a transaction password (PIN 135790)."""
    from tests.transactions.pos import staff_with_pin

    return staff_with_pin(merchant, "manager")
