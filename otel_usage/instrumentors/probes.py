"""``ProbeInstrumentor``: record functions named in configuration, without changing their code.

Under ``opentelemetry-instrument`` it is loaded as the ``otel_usage_probes`` instrumentor and reads
:envvar:`OTEL_USAGE_PROBES` and :envvar:`OTEL_USAGE_PROBES_FILE`; by hand::

    from otel_usage.instrumentors.probes import ProbeInstrumentor

    ProbeInstrumentor().instrument(probes="shop.cart:Cart.*,shop.orders:place_order=INFO[-card_number]")
    ...
    ProbeInstrumentor().uninstrument()      # every original function is back, exactly

Target syntax (``module:qualname[=LEVEL][[params]]``, globs, include/exclude, ``return``): see
:mod:`otel_usage.instrumentors._probe_targets`.

Each matching function is replaced in its module or class by a ``wrapt.FunctionWrapper`` that records
calls exactly like ``@traced_usage`` (same span, level gate, parameter capture, redaction): the
recorded function is ``module.qualname`` as named by the target, its tracker the module, and methods
record the class of ``self``/``cls`` as ``class_name``. Modules already imported are wrapped at once;
the others when they are imported (``wrapt`` post-import hooks), before the importer gets their names.

Never double-wraps (a function already wrapped by this instrumentor or decorated with
``@traced_usage`` is left as it is). ``uninstrument()`` puts back the original objects (a
classmethod/staticmethod object, an inherited method is un-shadowed) and turns off any wrapper it cannot
take out because something else wrapped it afterwards. A target whose module is never imported, whose
attribute does not exist, or which names something that is not a function is a warning naming it.

``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otel_usage_probes`` keeps ``opentelemetry-instrument`` from
loading it. Python code that imported a function by name *before* it was wrapped keeps the original;
under ``opentelemetry-instrument`` wrapping happens before the application imports anything. The
script being run (``__main__``) cannot be probed that way: its functions do not exist yet when the
instrumentor runs; probe the modules it imports.
"""

from otel_usage.instrumentors._probes import ProbeInstrumentor

__all__ = ["ProbeInstrumentor"]
