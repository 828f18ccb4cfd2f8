"""Validates an OpenAPI document and prints its operations as JSON:
[{"method": "GET", "path": "/api/...", "responses": ["200", "401", ...], "secured": true}, ...]
An operation is secured when it needs credentials: a security requirement that is not empty and
has no empty alternative (`{}`, "optionally authenticated", as /metrics without a token).

Usage: python openapi_operations.py openapi.yaml"""
import json
import sys

import yaml
from openapi_spec_validator import validate

with open(sys.argv[1]) as handle:
    document = yaml.safe_load(handle)
validate(document)  # raises with the reason when the document is not valid OpenAPI 3.1
def secured(requirements):
    return bool(requirements) and {} not in requirements


operations = []
for path, item in document["paths"].items():
    for method, operation in item.items():
        if method in ("get", "post", "put", "patch", "delete"):
            operations.append({
                "method": method.upper(),
                "path": path,
                "responses": sorted(operation["responses"].keys()),
                "secured": secured(operation.get("security", document.get("security"))),
            })
print(json.dumps({"openapi": document["openapi"], "operations": operations}))
