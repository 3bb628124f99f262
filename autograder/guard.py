"""Code injected into a student's notebook at grading time (never shown to students).

``CAPTURE`` runs first, before any student cell. It records what test cells and the
kernel's reply path rely on:

- the namespaces of ``builtins``, NumPy's comparison functions, ``dlcourse.checks`` and
  ``linecache``, and the functions of ``sys``, ``matplotlib``, ``matplotlib.pyplot`` and
  ``matplotlib_inline.backend_inline`` (whose event callbacks are the only ones allowed);
- the objects a verdict travels through — the IPython shell, its compiler, event manager,
  display publisher and hook, history manager and traceback formatters, the kernel, its
  ``session``, shell stream and iopub socket/thread — and, for each, the dictionary of every
  class in its MRO (so ``Session.send = ...`` or ``Kernel.execute_request = ...`` shows), the
  instance methods set on it (``kernel.session.send = ...``), and the references between them
  (``kernel.session``, ``shell.kernel``, ``shell.compile``...), plus ``kernel.shell_handlers``;
- IPython's event callbacks, input and AST transformers, and that nothing traces or profiles
  (``sys.settrace``/``setprofile``): all of these see the source of every cell, hidden tests
  included.

``guard(token)`` runs right before and right after every graded test cell. It prints
``AUTOGRADER-GUARD-OK <token>`` when nothing was replaced and raises
``AutograderTamperError`` otherwise; the grader scores the test 0 as ``tampered`` unless both
guards printed their token and replied ``ok``.

Injected code is executed with ``store_history=False``, so it is not in ``In``/``_ih``/the
history database. The guard covers the visible part of a test, which runs in the kernel; the
hidden part never does (``autograder/hidden.py``). This catches the ways student code can forge
a visible verdict that we know of; it does not stop code that reads this module and then patches
the guard's own state in the kernel (see autograder/README.md, "Limits").
"""

NOT_STORED = "# autograder: not stored in history"
TOKEN_PREFIX = "AUTOGRADER-GUARD-OK"
TAMPER_ENAME = "AutograderTamperError"

CAPTURE = NOT_STORED + r'''
class AutograderTamperError(Exception):
    """Raised by the grader when student code replaced something the tests rely on."""


def __autograder_capture():
    import builtins, linecache, sys, threading, types
    import numpy, numpy.testing, numpy.linalg
    watched = {"builtins": builtins, "numpy": numpy, "numpy.testing": numpy.testing,
               "numpy.linalg": numpy.linalg, "linecache": linecache}
    try:
        import dlcourse.checks
        watched["dlcourse.checks"] = dlcourse.checks
    except Exception:
        pass
    # matplotlib registers its own event callbacks when first used (pyplot's draw-if-interactive,
    # the inline backend's figure flush): those are allowed, by code object and module globals,
    # and the functions of their modules are watched so that they cannot be redirected.
    callback_modules = []
    try:
        import matplotlib, matplotlib.pyplot, matplotlib_inline.backend_inline
        callback_modules = [matplotlib, matplotlib.pyplot, matplotlib_inline.backend_inline]
    except Exception:
        pass
    # IPython's %matplotlib wraps pyplot.draw_if_interactive in flag_calls: a wrapper whose
    # code is IPython's own and whose closure holds the function it replaced is accepted.
    wrapper_codes = set()
    try:
        from IPython.utils.decorators import flag_calls
        wrapper_codes = {c for c in flag_calls.__code__.co_consts if isinstance(c, types.CodeType)}
    except Exception:
        pass
    allowed_callback_codes, callback_globals, module_functions = set(), [], {}
    for mod in callback_modules:
        callback_globals.append(vars(mod))
        functions = {k: v for k, v in vars(mod).items() if isinstance(v, types.FunctionType)}
        module_functions[mod.__name__] = functions
        for f in functions.values():
            if f.__module__ == mod.__name__:
                allowed_callback_codes.add(f.__code__)
                allowed_callback_codes.update(c for c in f.__code__.co_consts if isinstance(c, types.CodeType))
    ip = get_ipython()
    kernel = getattr(ip, "kernel", None)
    session = getattr(kernel, "session", None)
    path = {"shell": ip, "kernel": kernel, "session": session,
            "shell stream": getattr(kernel, "shell_stream", None),
            "iopub socket": getattr(kernel, "iopub_socket", None),
            "iopub thread": getattr(kernel, "iopub_thread", None),
            "compiler": ip.compile, "events": ip.events, "display publisher": ip.display_pub,
            "display hook": ip.displayhook, "history manager": ip.history_manager,
            "traceback formatter": ip.InteractiveTB, "syntax error formatter": ip.SyntaxTB,
            "input transformer manager": ip.input_transformer_manager}
    path = {name: obj for name, obj in path.items() if obj is not None}
    links = [("shell", "kernel", "kernel"), ("kernel", "session", "session"),
             ("kernel", "shell_stream", "shell stream"), ("kernel", "iopub_socket", "iopub socket"),
             ("kernel", "iopub_thread", "iopub thread"), ("shell", "compile", "compiler"),
             ("shell", "events", "events"), ("shell", "display_pub", "display publisher"),
             ("shell", "displayhook", "display hook"), ("shell", "history_manager", "history manager"),
             ("shell", "InteractiveTB", "traceback formatter"), ("shell", "SyntaxTB", "syntax error formatter"),
             ("shell", "input_transformer_manager", "input transformer manager")]
    links = [(a, attr, b) for a, attr, b in links if a in path and b in path]
    classes = {}
    extra = []
    try:
        import zmq
        from zmq.eventloop.zmqstream import ZMQStream
        extra = [zmq.Socket, ZMQStream]
    except Exception:
        pass
    for cls in [type(obj) for obj in path.values()] + extra:
        for c in cls.__mro__:
            if c is not object and c not in classes:
                classes[c] = dict(vars(c))
    # Class attributes Python or the frameworks create on first use.
    class_volatile = {"__annotations__", "_instance", "__abstractmethods__", "_abc_impl"}

    isinstance_, getattr_, vars_, type_, len_, print_ = isinstance, getattr, vars, type, len, print
    callable_, sorted_, set_, list_ = callable, sorted, set, list

    def instance_methods(obj):
        return {k: v for k, v in getattr_(obj, "__dict__", {}).items() if callable_(v)}

    def trait_callables(obj):  # traitlets keep trait values apart (session.pack, session.unpack...)
        values = getattr_(obj, "__dict__", {}).get("_trait_values")
        return {k: v for k, v in values.items() if callable_(v)} if isinstance_(values, dict) else {}

    instances = {name: (obj, type(obj), instance_methods(obj)) for name, obj in path.items()}
    traits = {name: trait_callables(obj) for name, obj in path.items()}
    handlers = {}
    for attr in ("shell_handlers", "control_handlers"):
        table = getattr(kernel, attr, None)
        if isinstance(table, dict):
            handlers[attr] = (table, dict(table))
    events = {k: list(v) for k, v in ip.events.callbacks.items()}
    transformer_lists = {
        "input_transformers_cleanup": lambda s: s.input_transformers_cleanup,
        "input_transformers_post": lambda s: s.input_transformers_post,
        "ast_transformers": lambda s: s.ast_transformers,
        "cleanup_transforms": lambda s: s.input_transformer_manager.cleanup_transforms,
        "line_transforms": lambda s: s.input_transformer_manager.line_transforms,
        "token_transformers": lambda s: s.input_transformer_manager.token_transformers,
    }
    transformers = {}
    for name, get in transformer_lists.items():
        try:
            lst = get(ip)
        except AttributeError:
            continue
        transformers[name] = (lst, list(lst))
    modules = {name: dict(vars(mod)) for name, mod in watched.items()}
    sys_functions = {k: v for k, v in vars(sys).items() if isinstance(v, types.BuiltinFunctionType)}
    ip_type = type(ip)
    stdout = sys.stdout  # the kernel's stream: the token reaches the grader even if a cell redirects print
    custom_exceptions = ip.custom_exceptions
    tracing = (sys.gettrace(), sys.getprofile(), getattr(threading, "_trace_hook", None),
               getattr(threading, "_profile_hook", None))

    # IPython manages these builtins itself; a notebook may also shadow harmless names.
    ipython_managed = {"_", "__", "___", "exit", "quit", "get_ipython", "display", "__IPYTHON__",
                       "copyright", "credits", "license", "help", "__builtins__",
                       "input", "raw_input", "getpass"}  # ipykernel swaps input per execution
    protected_builtins = {n for n, v in vars(builtins).items()
                          if (isinstance(v, type) and issubclass(v, BaseException))
                          or n in ("isinstance", "issubclass", "type", "bool", "__import__",
                                   "getattr", "hasattr", "callable", "abs", "len", "repr", "print")}
    FunctionType = types.FunctionType

    def notebook_defined(obj):
        code = getattr_(obj, "__code__", None)
        if code is None:
            return False
        name = code.co_filename
        return name.startswith("<ipython-input-") or "ipykernel_" in name or name.startswith("<stdin>")

    def wraps(now, original):
        """``now`` is ``original``, or IPython's flag_calls wrapper around it (nested at most 8 deep)."""
        for _ in range(8):
            if now is original:
                return True
            if not (isinstance_(now, FunctionType) and now.__code__ in wrapper_codes and now.__closure__):
                return False
            inner = [c.cell_contents for c in now.__closure__ if isinstance_(c.cell_contents, FunctionType)
                     and c.cell_contents is not now]
            if len_(inner) != 1:
                return False
            now = inner[0]
        return False

    def label(obj):
        return getattr_(obj, "__qualname__", None) or type_(obj).__name__

    def check():
        problems = []
        for mod_name, before in modules.items():
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
        for mod_name, functions in module_functions.items():
            now = vars_(sys.modules.get(mod_name) or types)
            for key, value in functions.items():
                if not wraps(now.get(key), value):
                    problems.append(f"{mod_name}.{key} was replaced")
        sys_now = vars_(sys)
        for key, value in sys_functions.items():
            if sys_now.get(key) is not value:
                problems.append(f"sys.{key} was replaced")
        for mod_name in ("numpy", "numpy.testing", "dlcourse.checks", "math", "torch", "torch.testing"):
            mod = sys.modules.get(mod_name)
            if mod is None:
                continue
            for key, value in list_(vars_(mod).items()):
                if isinstance_(value, FunctionType) and notebook_defined(value):
                    problems.append(f"{mod_name}.{key} is a function defined in the notebook")
        ip_now = get_ipython()
        if type_(ip_now) is not ip_type or ip_now is not ip:
            problems.append("the IPython shell was replaced")
        for cls, before in classes.items():
            now = vars_(cls)
            for key in set_(before) | set_(now):
                if key in class_volatile:
                    continue
                if key not in now or key not in before or now[key] is not before[key]:
                    problems.append(f"{cls.__module__}.{cls.__qualname__}.{key} was replaced")
        for name, (obj, cls, methods) in instances.items():
            if type_(obj) is not cls:
                problems.append(f"the {name}'s class was changed")
            for key, value in list_(getattr_(obj, "__dict__", {}).items()):
                if key in methods:
                    if value is not methods[key]:
                        problems.append(f"the {name}'s {key} was replaced")
                elif callable_(value) and callable_(getattr_(cls, key, None)):
                    problems.append(f"the {name}'s {key} was replaced")
            for key in methods:
                if key not in getattr_(obj, "__dict__", {}):
                    problems.append(f"the {name}'s {key} was removed")
            now_traits = trait_callables(obj)
            for key, value in traits[name].items():
                if now_traits.get(key) is not value:
                    problems.append(f"the {name}'s {key} was replaced")
        for a, attr, b in links:
            if getattr_(instances[a][0], attr, None) is not instances[b][0]:
                problems.append(f"the {a}'s {attr} was replaced")
        for attr, (table, before) in handlers.items():
            now = getattr_(kernel, attr, None)
            if now is not table or len_(now) != len_(before) \
                    or any(now.get(k) is not v for k, v in before.items()):
                problems.append(f"the kernel's {attr} were changed")
        callbacks = ip_now.events.callbacks
        for event, registered in list_(callbacks.items()):
            for cb in registered:
                if any(cb is b for b in events.get(event, ())):
                    continue
                if isinstance_(cb, FunctionType) and cb.__code__ in allowed_callback_codes \
                        and any(cb.__globals__ is g for g in callback_globals):
                    continue
                problems.append(f"a {event} callback was registered ({label(cb)}): IPython event "
                                "callbacks see every cell's code, the tests' included")
        for name, (lst, before) in transformers.items():
            try:
                now = transformer_lists[name](ip_now)
            except AttributeError:
                now = None
            if now is not lst or len_(now) != len_(before) or any(x is not y for x, y in zip(now, before)):
                problems.append(f"IPython's {name} were changed: they see every cell's code")
        if ip_now.custom_exceptions != custom_exceptions:
            problems.append("a custom exception handler was installed (set_custom_exc)")
        now_tracing = (sys.gettrace(), sys.getprofile(), getattr_(threading, "_trace_hook", None),
                       getattr_(threading, "_profile_hook", None))
        if any(x is not y for x, y in zip(now_tracing, tracing)):
            problems.append("a trace or profile function was installed (sys.settrace/setprofile): "
                            "it sees the tests' code")
        user_ns = ip_now.user_ns
        for name in protected_builtins:
            if name in user_ns and user_ns[name] is not modules["builtins"].get(name):
                problems.append(f"the notebook defines its own {name!r}")
        return sorted_(set_(problems))

    def guard(token):
        problems = check()
        if problems:
            raise AutograderTamperError("; ".join(problems))
        print_("%s %s" % (TOKEN_PREFIX, token), file=stdout, flush=True)

    return guard

__autograder_guard = __autograder_capture()
del __autograder_capture
'''.replace("TOKEN_PREFIX", repr(TOKEN_PREFIX))


def guard_source(token: str) -> str:
    return f"{NOT_STORED}\n__autograder_guard({token!r})\n"

