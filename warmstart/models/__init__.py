"""Public model classes, one thin module per family, registered with the Auto classes on import."""
from .auto import *  # noqa: F401,F403
from .bert import *  # noqa: F401,F403
from .outputs import *  # noqa: F401,F403
