"""The model families as adapters on models.family.ModelFamily, by name (also their models subfolder)."""
from ..family import ModelFamily
from .tabular import TabularFamily

FAMILIES: dict[str, ModelFamily] = {family.name: family for family in (TabularFamily(),)}
