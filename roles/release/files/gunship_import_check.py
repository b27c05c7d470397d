"""Import a WSGI callable the way Gunicorn does, inside a release's venv: the import gate.

Reads the callable from argv[1]: `module`, `module:name` or `module:factory(args)` with
literal arguments. Exits 0 when the callable imports and is callable; otherwise prints
the reason and exits 1. Runs from stdin (`python - SPEC`) so nothing is left on the host.
"""

import ast
import importlib
import sys
import traceback


def load(spec: str) -> object:
    module_name, _, expression = spec.partition(":")
    module = importlib.import_module(module_name)
    expression = expression or "application"
    tree = ast.parse(expression, mode="eval").body
    if isinstance(tree, ast.Call):
        if not isinstance(tree.func, ast.Name):
            raise ValueError(f"{expression!r}: only a plain function name may be called")
        factory = getattr(module, tree.func.id)
        args = [ast.literal_eval(arg) for arg in tree.args]
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in tree.keywords}
        return factory(*args, **kwargs)
    if not isinstance(tree, ast.Name):
        raise ValueError(f"{expression!r}: expected a name or a factory call")
    return getattr(module, tree.id)


def main() -> int:
    spec = sys.argv[1]
    try:
        app = load(spec)
    except Exception:
        print(f"the WSGI callable {spec!r} does not import in this release:", file=sys.stderr)
        traceback.print_exc(limit=-3)
        return 1
    if not callable(app):
        print(f"{spec!r} imported, but it is a {type(app).__name__}, not a WSGI callable", file=sys.stderr)
        return 1
    print(f"{spec} imports: {type(app).__module__}.{type(app).__qualname__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
