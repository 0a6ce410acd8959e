"""Form parameters built from the engine's declarations (:mod:`scnet.declare`).

:func:`addDeclared` adds the parameter of one declared engine option to a form: its class (Enum for
choices), default, help (with the accepted values and unit), label unit and a validator that runs
the engine's own check of that option, so pyworkflow refuses a value outside the declared bounds
before anything runs.  The parameter remembers its declaration (``param.declared``), which
:func:`engineValue` uses to turn the form's value into the engine's (an Enum index into its
choice, the form's "unset" value into None) and the plugin's form test to compare every form
with the engine.
"""
import pyworkflow.protocol.params as params

from scnet.declare import describe, field_of, form_unset, kind, option_errors, type_name


def _capital(text):
    return text[:1].upper() + text[1:]


def formValue(f, value):
    """The form's value for the engine's ``value`` of field ``f`` (a choice -> its Enum index; None -> unset)."""
    choices = f.metadata.get("choices")
    if choices:
        return list(choices).index(value)
    return form_unset(f) if value is None else value


def formDefault(f):
    """The form's value for the declared default of field ``f``."""
    return formValue(f, f.default)


def engineValue(f, value):
    """The engine's value of field ``f`` for a form value (Enum index -> choice; unset -> None)."""
    choices = f.metadata.get("choices")
    if choices:
        return None if value is None else choices[int(value)]
    if value is None or ("Optional" in type_name(f) and value == form_unset(f)):
        return None
    if kind(f) == "str":
        return str(value).strip() or (None if "Optional" in type_name(f) else "")
    return value


def addDeclared(form, name, cls, fieldName, label, help="", **kwargs):
    """Add the form parameter ``name`` of the engine option ``cls.fieldName``; ``help`` is appended to
    the declared help.  Other keyword arguments (condition, expertLevel ...) go to ``addParam``."""
    f = field_of(cls, fieldName)
    m, k = f.metadata, kind(f)
    text = _capital(describe(f)) + "."
    if "Optional" in type_name(f):
        unset = form_unset(f)
        text += f" {'Empty' if unset == '' else unset} = unset."
    if m.get("choices"):
        kwargs.update(choices=[str(c) for c in m["choices"]])
        kwargs.setdefault("display", params.EnumParam.DISPLAY_HLIST)
        paramClass = params.EnumParam
    else:
        paramClass = {"bool": params.BooleanParam, "int": params.IntParam, "float": params.FloatParam,
                      "str": params.StringParam}[k]
    unit = m.get("unit")
    param = form.addParam(name, paramClass, default=formDefault(f), label=label + (f" ({unit})" if unit else ""),
                          help=text + (f" {help}" if help else ""), **kwargs)

    def validate(value):
        return option_errors(cls, {fieldName: engineValue(f, value)}, cls.LABEL)[0]
    param.addValidator(validate)
    param.declared = (cls, fieldName)
    return param


def declaredParams(protocol):
    """``{param name: (param, config class, field name)}`` of every declared parameter of a protocol's form."""
    out = {}
    for name, param in protocol._definition.iterAllParams():
        decl = getattr(param, "declared", None)
        if decl:
            out[name] = (param, *decl)
    return out
