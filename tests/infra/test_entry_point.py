"""``infra/__main__.py`` selects the program from the stack name."""

import asyncio
import runpy

import pulumi

import mock_stack

ENTRY = str(mock_stack.ROOT / "infra" / "__main__.py")
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"


@pulumi.runtime.test
def test_flexible_engine_stack_runs_kubernetes_program():
    mocks = mock_stack.start("flexible-engine", mock_stack.committed_config("flexible-engine"),
                             {"tacops-ct:tlsPrivateKey": "k", "tacops-ct:hsmPin": "0"})
    runpy.run_path(ENTRY, run_name="__main__")

    async def settled():
        # The entry point returns no resource to wait on, so poll for the Ingress (up to 2 s).
        for _ in range(200):
            if mocks.of_type(INGRESS):
                break
            await asyncio.sleep(0.01)
        types = {item.type for item in mocks.registrations}
        assert INGRESS in types
        assert not any(t.startswith("outscale:") for t in types)

    return pulumi.Output.from_input(asyncio.ensure_future(settled()))
