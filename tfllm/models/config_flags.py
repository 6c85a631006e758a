"""absl flags that override a preset's config field by field (`--num_layers=4`)."""

import dataclasses

from absl import flags

from tfllm.models import configs


def _field_names():
    names = {}
    for cls in configs.CONFIG_CLASSES.values():
        for field in dataclasses.fields(cls):
            names.setdefault(field.name, field)
    return names


def define_flags(flag_values=flags.FLAGS):
    """Defines `--preset` and one override flag per config field."""
    flags.DEFINE_string("preset", "bert_tiny",
                        f"Model preset: {', '.join(sorted(configs.PRESETS))}.",
                        flag_values=flag_values)
    for name, field in _field_names().items():
        flags.DEFINE_string(name, None,
                            f"Override the preset's {name} ({field.type.__name__}).",
                            flag_values=flag_values)


def config_from_flags(flag_values=flags.FLAGS, base=None):
    """The preset named by `--preset` (or the `base` config, e.g. a pretrained
    model's) with every field flag that was set applied."""
    config = base or configs.get_preset(flag_values.preset)
    valid = {field.name for field in dataclasses.fields(config)}
    overrides = {name: flag_values[name].value for name in _field_names()
                 if flag_values[name].value is not None}
    misplaced = sorted(set(overrides) - valid)
    if misplaced:
        origin = "the --init_checkpoint model" if base else f"preset {flag_values.preset!r}"
        raise configs.ConfigError(
            f"Flag(s) --{', --'.join(misplaced)} do not apply to {config.family} {origin}.")
    return configs.override(config, overrides)
