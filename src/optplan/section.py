"""The base of every config section and the constrained number types the sections share.

Pydantic's lax mode turns ``true`` into 1 for an int field, so ``knee.patience: true`` would
train with a patience of one epoch; a section refuses a boolean wherever its field does not
take one (also inside lists), naming the field like any other validation error.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

Count = Annotated[int, Field(ge=1)]
"""A whole number of at least 1 (frames, clips, steps)."""
PositiveFinite = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
"""A float above 0 that is neither inf nor NaN (learning rates, multipliers, stds)."""


def _admits_bool(annotation: Any) -> bool:
    return annotation is bool or annotation is Any or any(_admits_bool(a) for a in get_args(annotation))


def _holds_bool(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, bool) for v in value)
    return isinstance(value, bool)


class Section(BaseModel):
    """A config section: unknown keys are refused, and so is true/false where a number is meant."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        if _holds_bool(value) and not _admits_bool(cls.model_fields[info.field_name].annotation):
            raise ValueError("true/false given where a number or a name is expected")
        return value
