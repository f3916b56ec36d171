"""
The exchange state transition function: ``apply_step`` (docs/protocol.md, section 5).

A batch's trace is its consumed L1 messages in inbox order, then its user
transactions in order. Each is one step; :func:`apply_step` is total. This
module decodes a step and dispatches it; the rules live in the modules named
after what they govern (accounts, orders, liquidation, oracle).
"""

from collections.abc import Mapping
from dataclasses import replace

from .accounts import apply_deposit, apply_transfer, apply_withdraw, require_account, use_nonce
from .crypto import recover_signer
from .errors import InvalidSignatureError, WireError
from .inbox import Deposit, decode_l1_message
from .liquidation import apply_liquidate
from .oracle import apply_oracle_price
from .orders import apply_cancel, apply_cancel_all, place_order
from .records import store_account
from .state import StateView
from .step import BatchContext, Outcome, Reason, Rejected, Step, StepKind, StepState
from .transactions import (
    Cancel,
    CancelAll,
    Liquidate,
    OraclePrice,
    Order,
    Transfer,
    Withdraw,
    decode_transaction,
)
from .tree import NodeStore
from .witness import WitnessRecorder


def apply_step(
    state: StateView,
    step: Step,
    context: BatchContext,
    signers: Mapping[bytes, bytes] | None = None,
) -> Outcome:
    """
    Apply one step to ``state``. Total: whatever ``step.data`` holds, this returns
    an :class:`~node.protocol.step.Outcome` and leaves ``state`` either with the
    step's effects or, if the step is rejected, untouched.

    ``signers`` may map encoded transactions to the signer already recovered from
    them (the sequencer recovers at admission); recovery is a pure function of the
    bytes, so this changes nothing but the time taken.
    """
    view = StepState(state)
    try:
        outcome = execute_step(view, step, context, signers or {})
    except Rejected as rejection:
        return Outcome(rejection.reason, rejection.detail)
    return replace(outcome, writes=view.flush())


def execute_step(
    view: StateView, step: Step, context: BatchContext, signers: Mapping[bytes, bytes]
) -> Outcome:
    """Dispatch one step by its source; raises :class:`Rejected` to reject it."""
    if step.kind == StepKind.L1_MESSAGE:
        try:
            message = decode_l1_message(step.data)
        except WireError as exc:
            raise Rejected(Reason.MALFORMED, str(exc)) from None
        if isinstance(message, Deposit):
            return apply_deposit(view, message)
        return apply_transaction(view, message.transaction, context, signers)
    return apply_transaction(view, step.data, context, signers)


def apply_transaction(
    view: StateView, raw: bytes, context: BatchContext, signers: Mapping[bytes, bytes]
) -> Outcome:
    """Decode and authenticate a transaction, consume its nonce, and apply it."""
    try:
        tx = decode_transaction(raw)
    except WireError as exc:
        raise Rejected(Reason.MALFORMED, str(exc)) from None
    digest = tx.hash(context.domain)
    signer = signers.get(raw)
    if signer is None:
        try:
            signer = recover_signer(digest, tx.signature)
        except InvalidSignatureError as exc:
            raise Rejected(Reason.BAD_SIGNATURE, str(exc)) from None
    message = tx.message
    if isinstance(message, OraclePrice):
        return apply_oracle_price(view, signer, message, context)
    account_id: int = message.account  # type: ignore[attr-defined]
    account = require_account(view, account_id)
    if account.owner != signer:
        raise Rejected(Reason.WRONG_SIGNER, f"account {account_id} is not owned by the signer")
    use_nonce(account, message.nonce)  # type: ignore[attr-defined]
    store_account(view, account_id, account)
    if isinstance(message, Order):
        return place_order(view, context, account_id, message, digest)
    if isinstance(message, Cancel):
        return apply_cancel(view, account_id, message)
    if isinstance(message, CancelAll):
        return apply_cancel_all(view, account_id, message)
    if isinstance(message, Transfer):
        return apply_transfer(view, account_id, message)
    if isinstance(message, Withdraw):
        return apply_withdraw(view, account_id, message)
    assert isinstance(message, Liquidate)
    return apply_liquidate(view, account_id, message)


def prove_step(
    store: NodeStore, root: bytes, step: Step, context: BatchContext
) -> tuple[Outcome, bytes, bytes]:
    """
    Replay one step from the committed ``root`` of ``store`` (which is not
    modified) while recording its witness. Returns the outcome, the encoded
    witness and the post-state root: exactly what the one-step executor gets and
    must reproduce.
    """
    recorder = WitnessRecorder(store, root)
    outcome = apply_step(recorder, step, context)
    return outcome, recorder.witness(), recorder.root
