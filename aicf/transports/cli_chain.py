"""`aicf chain deploy --rpc-url URL`: deploy the AICF contracts to an EVM node and write the deployment file.

The composition root registers it with the deploy function (`aicf.chain.deploy.deploy_to_node`):
`app.add_typer(build_chain_app(deploy_to_node), name="chain")`. Exit 0 on success, 1 when the node or the
deployment refuses (the message names why), 2 on bad usage.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from aicf.core.errors import AicfError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DeployFn = Callable[..., dict[str, object]]


ClaimFn = Callable[..., dict[str, object]]


def build_chain_app(deploy_fn: DeployFn, claim_fn: ClaimFn | None = None) -> typer.Typer:
    chain_app = typer.Typer(help="The EVM chain: deploy the AICF contracts, claim payouts.", no_args_is_help=True)

    @chain_app.callback()
    def chain() -> None:
        """The EVM chain (docs/EVM.md)."""

    if claim_fn is not None:

        @chain_app.command("claim")
        def claim(
            epoch: Annotated[int, typer.Option(min=0, help="The settled epoch to claim")],
            key: Annotated[Path, typer.Option(help="The sender's secp256k1 key file (created 0600 if missing)")],
            url: Annotated[str, typer.Option(envvar="AICF_URL", help="The coordinator")] = "http://127.0.0.1:8000",
            account: Annotated[
                str | None, typer.Option(help="The account paid (default: the key's address), e.g. a provider's owner")
            ] = None,
            as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
        ) -> None:
            """Claim an account's payout of a settled epoch on chain, with the Merkle proof aicf.getClaim serves."""
            try:
                paid = claim_fn(url=url, epoch=epoch, key_file=key, account=account)
            except AicfError as exc:
                err.print(f"error: {exc}", markup=False)
                raise typer.Exit(1) from None
            if as_json:
                out.print(json.dumps(paid, sort_keys=True), markup=False)
                return
            out.print(
                f"claimed {paid['amount']} µANM of epoch {epoch} for {paid['account']} in {paid['tx_hash']}; "
                f"balance {paid['balance_before']} -> {paid['balance_after']}",
                markup=False,
            )

    @chain_app.command("deploy")
    def deploy(
        rpc_url: Annotated[str, typer.Option("--rpc-url", help="The node's JSON-RPC URL")],
        out_file: Annotated[Path, typer.Option("--out", help="Where to write the deployment file")] = Path(
            "contracts.json"
        ),
        coordinator: Annotated[str | None, typer.Option(help="Coordinator role address (default: deployer)")] = None,
        fund: Annotated[str | None, typer.Option(help="Fund address (default: deployer)")] = None,
        token: Annotated[str | None, typer.Option(help="An existing ERC-20 (default: deploy the test token)")] = None,
        private_key_file: Annotated[
            Path | None, typer.Option(help="File holding the deployer's hex key (default: the node's first account)")
        ] = None,
        unbonding_period_s: Annotated[int, typer.Option(min=0, max=365 * 86400)] = 7 * 86400,
        finality_depth: Annotated[int, typer.Option(min=1, max=1_000_000)] = 6,
        consumer: Annotated[bool, typer.Option(help="Also deploy the example ResultConsumer")] = True,
        as_json: Annotated[bool, typer.Option("--json", help="Print the deployment as JSON")] = False,
    ) -> None:
        """Deploy the token (unless --token), Aicf and the example consumer; write chain id and addresses."""
        try:
            deployment = deploy_fn(
                rpc_url=rpc_url,
                out=out_file,
                coordinator=coordinator,
                fund=fund,
                token=token,
                private_key_file=private_key_file,
                unbonding_period_s=unbonding_period_s,
                finality_depth=finality_depth,
                with_consumer=consumer,
            )
        except AicfError as exc:
            err.print(f"error: {exc}")
            raise typer.Exit(1) from None
        if as_json:
            out.print(json.dumps(deployment, sort_keys=True))
            return
        out.print(f"deployed on chain {deployment['chain_id']} at block {deployment['deploy_block']} -> {out_file}")
        for name in ("token", "aicf", "consumer", "coordinator", "fund"):
            out.print(f"  {name:<12}{deployment[name]}")

    return chain_app
