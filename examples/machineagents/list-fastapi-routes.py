#!/usr/bin/env python3
"""List the proxy endpoints of gateway_route/src/main.py so the route table can be finished.

The seeds name 82 of the 197 endpoints; run this on the real file to list all of them:

    python3 examples/machineagents/list-fastapi-routes.py path/to/gateway_route/src/main.py

One line per endpoint: source line, method, gateway path, the upstream URL(s) the handler
calls, the numeric timeouts in the handler, and whether it takes file uploads. The output is
a table to read and compare against endpoints.md. It does not write YAML.
"""
import ast
import sys

METHODS = ("get", "post", "put", "patch", "delete")


def main(path: str) -> None:
    src = open(path, encoding="utf-8").read()
    for fn in ast.walk(ast.parse(src)):
        if not isinstance(fn, (ast.AsyncFunctionDef, ast.FunctionDef)):
            continue
        for d in fn.decorator_list:
            if not (isinstance(d, ast.Call) and getattr(d.func, "attr", "") in METHODS):
                continue
            route = d.args[0].value if d.args else next((k.value.value for k in d.keywords if k.arg == "path"), "?")
            # f-strings that mention a *SERVICE* variable are the upstream calls.
            ups = sorted({s for n in ast.walk(fn) if isinstance(n, ast.JoinedStr)
                          for s in [ast.get_source_segment(src, n) or ""] if "SERVICE" in s})
            timeouts = sorted({n.value for n in ast.walk(fn) if isinstance(n, ast.Constant) and isinstance(n.value, float)})
            multipart = "File(" in (ast.get_source_segment(src, fn) or "")
            print(f"{fn.lineno:>5} {d.func.attr.upper():<6} {route:<48} | {' '.join(ups) or '-'} "
                  f"| timeouts {timeouts or '-'}{' | multipart' if multipart else ''}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
