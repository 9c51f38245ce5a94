"""The model families as adapters on families.contract.ModelFamily, by name (also their models subfolder)."""
from families.contract import ModelFamily
from families.language.family import FAMILY as LANGUAGE
from families.molecules.family import FAMILY as MOLECULES
from families.tabular.family import TabularFamily
from families.vision.family import FAMILY as VISION

FAMILIES: dict[str, ModelFamily] = {family.name: family for family in (VISION, TabularFamily(), MOLECULES, LANGUAGE)}
