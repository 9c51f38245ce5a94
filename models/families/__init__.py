"""The model families as adapters on models.family.ModelFamily, by name (also their models subfolder)."""
from ..family import ModelFamily
from .language import FAMILY as LANGUAGE
from .molecules import FAMILY as MOLECULES
from .tabular import TabularFamily
from .vision import FAMILY as VISION

FAMILIES: dict[str, ModelFamily] = {family.name: family for family in (VISION, TabularFamily(), MOLECULES, LANGUAGE)}
