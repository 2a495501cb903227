"""The IAM statements of template.yaml that allow a data-plane action on every resource.

Reads the template with its parameters at their defaults (or as given: Name=Value arguments),
evaluates the conditions, resolves !Ref / !Sub / !Join / !Split / !If far enough to see each
statement's resources, and prints one JSON line per Allow statement whose resource is "*" or a
wildcard over every bucket, object, function, table or queue, for an action outside the few that
have no resource (sts:GetCallerIdentity, cloudwatch:PutMetricData, ...).

With --arns, prints instead every ARN that an Allow statement names (function, sid, resource),
so that a test can check the partition of each (AWS::Partition=aws-cn is a Name=Value too).

Usage: python template_policies.py [--arns] TEMPLATE [Name=Value ...]
"""

import json
import re
import sys

import yaml

# Actions that AWS only allows on "*" (no resource-level permissions).
RESOURCELESS = {"sts:GetCallerIdentity", "cloudwatch:PutMetricData", "xray:PutTraceSegments",
                "xray:PutTelemetryRecords"}
NO_VALUE = object()


class Tag:
    def __init__(self, name, value):
        self.name, self.value = name, value


def construct(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return Tag(suffix, value)


class Loader(yaml.SafeLoader):
    pass


Loader.add_multi_constructor("!", construct)


class Template:
    def __init__(self, doc, overrides):
        self.params = {k: v.get("Default") for k, v in doc.get("Parameters", {}).items()}
        self.params.update({"AWS::Partition": "aws", "AWS::AccountId": "111122223333",
                            "AWS::Region": "us-east-1", "AWS::StackName": "batchops"})
        self.params.update(overrides)
        self.resources = doc.get("Resources", {})
        self.raw_conditions = doc.get("Conditions", {})
        self.conditions = {}

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.eval(self.raw_conditions[name]))
        return self.conditions[name]

    def ref(self, name):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.params:
            value = self.params[name]
            if isinstance(value, str) and "," in value:
                return value.split(",")
            return value
        return f"<{name}>"

    def sub(self, text, names=None):
        names = names or {}

        def one(match):
            key = match.group(1)
            if key in names:
                value = names[key]
            elif "." in key:
                return f"<{key}>"
            else:
                value = self.ref(key)
            return ",".join(value) if isinstance(value, list) else str(value)

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def eval(self, node):
        if isinstance(node, Tag):
            name, value = node.name, node.value
            if name == "Ref":
                return self.ref(value)
            if name == "Condition":
                return self.condition(value)
            if name == "Equals":
                a, b = (self.eval(v) for v in value)
                return a == b
            if name == "Not":
                return not self.eval(value[0])
            if name == "And":
                return all(self.eval(v) for v in value)
            if name == "Or":
                return any(self.eval(v) for v in value)
            if name == "If":
                cond, yes, no = value
                return self.eval(yes) if self.condition(cond) else self.eval(no)
            if name == "Join":
                sep, items = value[0], self.eval(value[1])
                items = items if isinstance(items, list) else [items]
                return sep.join(str(i) for i in items)
            if name == "Split":
                return str(self.eval(value[1])).split(value[0])
            if name == "Sub":
                if isinstance(value, list):
                    names = {k: self.eval(v) for k, v in value[1].items()}
                    return self.sub(value[0], names)
                return self.sub(value)
            if name == "GetAtt":
                return f"<{value}>"
            return f"<{name}>"
        if isinstance(node, dict):
            if set(node) == {"Fn::If"}:
                return self.eval(Tag("If", node["Fn::If"]))
            return {k: v for k, v in ((k, self.eval(v)) for k, v in node.items()) if v is not NO_VALUE}
        if isinstance(node, list):
            return [v for v in (self.eval(v) for v in node) if v is not NO_VALUE]
        return node


def everything(resource):
    """A resource that names every bucket, object, function, table or queue."""
    if resource == "*":
        return True
    if not isinstance(resource, str) or resource.startswith("<"):
        return False
    parts = resource.split(":", 5)
    if len(parts) < 6:
        return False
    service, rest = parts[2], parts[5]
    if service == "s3":
        return rest.split("/")[0] == "*"
    if service == "lambda":
        return rest in ("function:*", "*")
    if service in ("dynamodb", "sqs"):
        return rest in ("*", "table/*")
    return rest == "*"


def allow_statements(template):
    """(function, statement) for every Allow statement of the functions that exist."""
    for name, resource in template.resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        if "Condition" in resource and not template.condition(resource["Condition"]):
            continue
        for policy in template.eval(resource.get("Properties", {}).get("Policies", [])):
            if not isinstance(policy, dict) or "Statement" not in policy:
                continue
            for statement in policy["Statement"]:
                if statement.get("Effect") == "Allow":
                    yield name, statement


def as_list(value):
    return value if isinstance(value, list) else [value]


def arns(template):
    return [{"function": name, "sid": statement.get("Sid"), "resource": r}
            for name, statement in allow_statements(template)
            for r in as_list(statement.get("Resource", []))
            if isinstance(r, str) and r.startswith("arn:")]


def violations(template):
    found = []
    for name, statement in allow_statements(template):
        data = [a for a in as_list(statement.get("Action", [])) if a not in RESOURCELESS]
        wide = [r for r in as_list(statement.get("Resource", [])) if everything(r)]
        if data and wide:
            found.append({"function": name, "sid": statement.get("Sid"),
                          "actions": data, "resources": wide})
    return found


def main():
    args = sys.argv[1:]
    want_arns = args[:1] == ["--arns"]
    args = args[1:] if want_arns else args
    path, overrides = args[0], dict(a.split("=", 1) for a in args[1:])
    with open(path) as f:
        doc = yaml.load(f, Loader=Loader)
    template = Template(doc, overrides)
    for v in (arns(template) if want_arns else violations(template)):
        print(json.dumps(v))


if __name__ == "__main__":
    main()
