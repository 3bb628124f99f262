"""Code injected into a student's notebook at grading time (never shown to students).

``CAPTURE`` runs first, before any student cell: it records the objects that test cells
rely on (builtins, NumPy's comparison functions, ``dlcourse.checks``, IPython's
exception display and cell runner, the kernel's execute handler). ``GUARD`` runs right before
every graded test cell and raises ``AutograderTamperError`` when one of them was replaced,
when a watched module holds a function defined in the notebook, or when a notebook
global shadows an exception class or a builtin the tests use. The grader then scores that
test cell 0 with the guard's message as the reason.

This catches the obvious ways student code can make failing tests pass. It does not stop
a determined student who reads this code (``In`` holds the injected sources) and patches
the guard's own state; see autograder/README.md.
"""

CAPTURE = r'''
def __autograder_capture():
    import builtins, sys, types
    import numpy, numpy.testing, numpy.linalg
    watched = {"builtins": builtins, "numpy": numpy, "numpy.testing": numpy.testing,
               "numpy.linalg": numpy.linalg}
    try:
        import dlcourse.checks
        watched["dlcourse.checks"] = dlcourse.checks
    except Exception:
        pass
    ip = get_ipython()
    ip_names = ("showtraceback", "_showtraceback", "showsyntaxerror", "run_cell", "run_cell_async",
                "run_code", "run_ast_nodes", "set_custom_exc", "get_exception_only")
    kernel = getattr(ip, "kernel", None)
    snapshot = {
        "modules": {name: dict(vars(mod)) for name, mod in watched.items()},
        "ip_type": type(ip),
        "ip_methods": {n: (getattr(type(ip), n, None), vars(ip).get(n)) for n in ip_names},
        "ip_tb": (ip.InteractiveTB, ip.SyntaxTB, type(ip.InteractiveTB).structured_traceback),
        "custom_exceptions": ip.custom_exceptions,
        "kernel": (type(kernel), getattr(type(kernel), "do_execute", None)),
    }
    # IPython manages these builtins itself; a notebook may also shadow harmless names.
    ipython_managed = {"_", "__", "___", "exit", "quit", "get_ipython", "display", "__IPYTHON__",
                       "copyright", "credits", "license", "help", "__builtins__",
                       "input", "raw_input", "getpass"}  # ipykernel swaps input per execution
    protected_builtins = {n for n, v in vars(builtins).items()
                          if (isinstance(v, type) and issubclass(v, BaseException))
                          or n in ("isinstance", "issubclass", "type", "bool", "__import__",
                                   "getattr", "hasattr", "callable", "abs", "len", "repr")}
    isinstance_, getattr_, vars_, id_ = isinstance, getattr, vars, id
    FunctionType = types.FunctionType

    def notebook_defined(obj):
        code = getattr_(obj, "__code__", None)
        if code is None:
            return False
        name = code.co_filename
        return name.startswith("<ipython-input-") or "ipykernel_" in name or name.startswith("<stdin>")

    def check():
        problems = []
        for mod_name, before in snapshot["modules"].items():
            mod = sys.modules.get(mod_name)
            if mod is None:
                problems.append(f"module {mod_name} was removed from sys.modules")
                continue
            now = vars_(mod)
            for key, value in before.items():
                if key.startswith("__") and key != "__import__":
                    continue
                if mod_name == "builtins" and key in ipython_managed:
                    continue
                if key not in now or now[key] is not value:
                    problems.append(f"{mod_name}.{key} was replaced")
        for mod_name in ("numpy", "numpy.testing", "dlcourse.checks", "math", "torch", "torch.testing"):
            mod = sys.modules.get(mod_name)
            if mod is None:
                continue
            for key, value in list(vars_(mod).items()):
                if isinstance_(value, FunctionType) and notebook_defined(value):
                    problems.append(f"{mod_name}.{key} is a function defined in the notebook")
        ip_now = get_ipython()
        if type(ip_now) is not snapshot["ip_type"]:
            problems.append("the IPython shell was replaced")
        for n, (on_class, on_instance) in snapshot["ip_methods"].items():
            if getattr_(type(ip_now), n, None) is not on_class or vars_(ip_now).get(n) is not on_instance:
                problems.append(f"IPython's {n} was replaced")
        tb, stb, tb_method = snapshot["ip_tb"]
        if ip_now.InteractiveTB is not tb or ip_now.SyntaxTB is not stb \
                or type(tb).structured_traceback is not tb_method or "structured_traceback" in vars_(tb):
            problems.append("IPython's traceback formatter was replaced")
        if ip_now.custom_exceptions != snapshot["custom_exceptions"]:
            problems.append("a custom exception handler was installed (set_custom_exc)")
        k_type, k_exec = snapshot["kernel"]
        k_now = getattr_(ip_now, "kernel", None)
        if type(k_now) is not k_type or getattr_(type(k_now), "do_execute", None) is not k_exec \
                or (k_now is not None and "do_execute" in vars_(k_now)):
            problems.append("the kernel's execute handler was replaced")
        user_ns = ip_now.user_ns
        for name in protected_builtins:
            if name in user_ns and user_ns[name] is not snapshot["modules"]["builtins"].get(name):
                problems.append(f"the notebook defines its own {name!r}")
        return sorted(set(problems))

    return check

__autograder_check = __autograder_capture()
del __autograder_capture
'''

GUARD = r'''
__autograder_problems = __autograder_check()
if __autograder_problems:
    raise AutograderTamperError("; ".join(__autograder_problems))
'''

# GUARD raises this name; CAPTURE defines it as a builtin-free exception class.
CAPTURE += r'''
class AutograderTamperError(Exception):
    """Raised by the grader when student code replaced something the tests rely on."""
'''

TAMPER_ENAME = "AutograderTamperError"
