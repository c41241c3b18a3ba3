"""Entry point of the Pulumi project: the stack name selects the platform program."""

import pulumi

from tacops.infra import flexible_engine, outscale

BUILDERS = {"outscale": outscale.build, "flexible-engine": flexible_engine.build}

# A stack may carry another name (a staging copy, say) and select its platform in config.
platform = pulumi.Config().get("platform") or pulumi.get_stack()
if platform not in BUILDERS:
    raise ValueError(
        f"stack {pulumi.get_stack()!r} selects platform {platform!r}, which is unknown; "
        f"name the stack or set 'platform' to one of {sorted(BUILDERS)}"
    )
BUILDERS[platform]()
