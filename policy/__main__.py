"""Policy pack entry point: every rule mandatory, so a violation fails ``pulumi preview``."""

import secnumcloud
from pulumi_policy import EnforcementLevel, PolicyPack

secnumcloud.show_secrets_as_masked()

PolicyPack(
    name="tacops-secnumcloud",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=secnumcloud.POLICIES,
)
