"""Checks recorded API responses against the OpenAPI document: each status must be documented
for its operation, and each JSON body must validate against the documented schema.

Usage: python check_responses.py openapi.yaml responses.json
responses.json: [{"method": "GET", "path": "/api/chat/channels/{channelId}", "status": 200, "body": {...}}, ...]
Prints one line per problem and exits 1 when there is any."""
import json
import sys

import yaml
from jsonschema import Draft202012Validator

with open(sys.argv[1]) as handle:
    document = yaml.safe_load(handle)
with open(sys.argv[2]) as handle:
    recorded = json.load(handle)


def resolve(node):
    while isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#/"):
        target = document
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


problems = []
for entry in recorded:
    where = f'{entry["method"]} {entry["path"]} -> {entry["status"]}'
    operation = document["paths"].get(entry["path"], {}).get(entry["method"].lower())
    if operation is None:
        problems.append(f"{where}: operation not documented")
        continue
    response = operation["responses"].get(str(entry["status"]))
    if response is None:
        problems.append(f"{where}: status not documented")
        continue
    response = resolve(response)
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None or entry.get("body") is None:
        continue
    # Validate with the document's components in scope, so "#/components/..." refs resolve.
    rooted = {**schema, "components": document["components"]}
    for error in Draft202012Validator(rooted).iter_errors(entry["body"]):
        problems.append(f"{where}: {'/'.join(map(str, error.absolute_path))}: {error.message}")

for problem in problems:
    print(problem)
print(f"checked {len(recorded)} responses, {len(problems)} problems", file=sys.stderr)
sys.exit(1 if problems else 0)
