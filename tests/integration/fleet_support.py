"""One ec2_profile_association task run through ansible-playbook against the sandbox, with the
API calls it made (from the sandbox's request log): shared by the fleet tests."""

import json
import os
import time

from runner import ROOT, run_playbook
from sandbox.seed import profile_arn

PLAYBOOK = os.path.join(ROOT, "tests", "integration", "playbooks", "ec2_profile_association_scale", "converge.yml")
MUTATING = ("AssociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation", "DisassociateIamInstanceProfile")
NOOP_READS = ["GetInstanceProfile", "DescribeInstances", "DescribeIamInstanceProfileAssociations"]


arn = profile_arn


def attached(sandbox, ids):
    """{instance_id: (profile ARN, association id)} as DescribeIamInstanceProfileAssociations says."""
    ec2 = sandbox.client("ec2")
    found = {}
    for page in ec2.get_paginator("describe_iam_instance_profile_associations").paginate(
            Filters=[{"Name": "instance-id", "Values": ids}]):
        for association in page["IamInstanceProfileAssociations"]:
            if association["State"] in ("associating", "associated"):
                found[association["InstanceId"]] = (association["IamInstanceProfile"]["Arn"],
                                                    association["AssociationId"])
    return dict((i, found.get(i, (None, None))) for i in ids)


class Run:
    """One playbook run: the module's result, the API calls it made, its wall time."""

    def __init__(self, sandbox, tmp_path, name, check=False, **variables):
        result_file = tmp_path / (name + ".json")
        vars_file = tmp_path / (name + "-vars.json")
        variables["result_file"] = str(result_file)
        vars_file.write_text(json.dumps(variables))
        sandbox.app.clear_log()
        args = ["-e", "@" + str(vars_file)] + (["--check"] if check else [])
        started = time.monotonic()
        self.run = run_playbook(sandbox, PLAYBOOK, *args, name="association-" + name)
        self.wall = time.monotonic() - started
        assert self.run.returncode == 0, self.run.output[-4000:]
        self.result = json.loads(result_file.read_text())
        self.calls = [c for c in sandbox.calls() if c["service"] in ("ec2", "iam", "sts")]
        self.actions = [c["action"] for c in self.calls]
        self.mutations = [a for a in self.actions if a in MUTATING]
        self.reads = [a for a in self.actions if a not in MUTATING]

    def figures(self):
        return {"api_calls": len(self.calls), "mutating_calls": len(self.mutations), "reads": self.reads,
                "wall_seconds": round(self.wall, 2)}
