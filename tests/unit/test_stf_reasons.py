"""
Every rejection reason of the STF has a test that triggers exactly it.

``REASON_TESTS`` maps each :class:`~node.protocol.step.Reason` but OK to the
``test_invalid_*`` tests that trigger it and assert (a) the outcome's reason and
(b) an unchanged committed root (``stf_helpers.assert_rejected``).
"""

import inspect
from collections.abc import Callable
from types import ModuleType

from node.protocol.step import Reason
from tests.unit import test_stf_accounts as accounts
from tests.unit import test_stf_orders as orders
from tests.unit import test_stf_risk as risk

MODULES: tuple[ModuleType, ...] = (accounts, orders, risk)

REASON_TESTS: dict[Reason, tuple[Callable[..., None], ...]] = {
    Reason.MALFORMED: (accounts.test_invalid_malformed,),
    Reason.BAD_SIGNATURE: (accounts.test_invalid_bad_signature,),
    Reason.UNKNOWN_ACCOUNT: (accounts.test_invalid_unknown_account,),
    Reason.WRONG_SIGNER: (
        accounts.test_invalid_wrong_signer,
        risk.test_invalid_wrong_signer_oracle_price,
    ),
    Reason.NONCE_TOO_OLD: (accounts.test_invalid_nonce_too_old,),
    Reason.NONCE_USED: (accounts.test_invalid_nonce_used,),
    Reason.UNKNOWN_MARKET: (
        orders.test_invalid_unknown_market,
        risk.test_invalid_unknown_market_oracle_price,
    ),
    Reason.NO_ORACLE_PRICE: (orders.test_invalid_no_oracle_price,),
    Reason.INVALID_PRICE: (orders.test_invalid_price,),
    Reason.INVALID_SIZE: (orders.test_invalid_size,),
    Reason.INVALID_TIME_IN_FORCE: (orders.test_invalid_time_in_force,),
    Reason.EXPIRED: (orders.test_invalid_expired,),
    Reason.ORDER_ID_TAKEN: (orders.test_invalid_order_id_taken,),
    Reason.TOO_MANY_ORDERS: (orders.test_invalid_too_many_orders,),
    Reason.WOULD_CROSS: (orders.test_invalid_would_cross,),
    Reason.NOTHING_TO_REDUCE: (orders.test_invalid_nothing_to_reduce,),
    Reason.NOT_FILLED: (orders.test_invalid_not_filled,),
    Reason.ORDER_NOT_FOUND: (orders.test_invalid_order_not_found,),
    Reason.ZERO_AMOUNT: (accounts.test_invalid_zero_amount,),
    Reason.SELF_TRANSFER: (accounts.test_invalid_self_transfer,),
    Reason.UNKNOWN_RECIPIENT: (accounts.test_invalid_unknown_recipient,),
    Reason.INSUFFICIENT_COLLATERAL: (accounts.test_invalid_insufficient_collateral,),
    Reason.SELF_LIQUIDATION: (risk.test_invalid_self_liquidation,),
    Reason.NO_POSITION: (risk.test_invalid_no_position,),
    Reason.TARGET_HEALTHY: (risk.test_invalid_target_healthy,),
    Reason.LIQUIDATOR_MARGIN: (risk.test_invalid_liquidator_margin,),
    Reason.INVALID_ORACLE_PRICE: (risk.test_invalid_oracle_price,),
    Reason.STALE_TIMESTAMP: (
        risk.test_invalid_stale_timestamp,
        risk.test_invalid_stale_timestamp_zero_for_a_new_market,
    ),
    Reason.FUTURE_TIMESTAMP: (risk.test_invalid_future_timestamp,),
    Reason.INVALID_DEPOSIT: (accounts.test_invalid_deposit,),
}


def _invalid_tests() -> dict[str, Callable[..., None]]:
    found: dict[str, Callable[..., None]] = {}
    for module in MODULES:
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("test_invalid_") and function.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = function
    return found


def test_every_rejection_reason_has_a_test() -> None:
    """The mapping covers every Reason except OK, and nothing else."""
    assert set(REASON_TESTS) == set(Reason) - {Reason.OK}


def test_mapped_tests_are_invalid_tests_that_assert_their_reason() -> None:
    """Each mapped test is a test_invalid_* function of the STF test modules, asserts a
    rejection with the root check (assert_rejected) and names its reason."""
    collected = _invalid_tests()
    for reason, functions in REASON_TESTS.items():
        assert functions, reason
        for function in functions:
            key = f"{function.__module__}.{function.__name__}"
            assert key in collected, f"{key} is not a test_invalid_* test of the STF modules"
            source = inspect.getsource(function)
            assert "assert_rejected(" in source, key
            assert f"Reason.{reason.name}" in source, f"{key} does not assert {reason.name}"


def test_every_invalid_test_is_mapped() -> None:
    """No test_invalid_* test is left out of the mapping (so the mapping stays the index)."""
    mapped = {f"{f.__module__}.{f.__name__}" for fs in REASON_TESTS.values() for f in fs}
    assert set(_invalid_tests()) == mapped
