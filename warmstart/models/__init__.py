"""Public model classes, one thin module per family, registered with the Auto classes on import."""
from .auto import *  # noqa: F401,F403
from .bert import *  # noqa: F401,F403
from .bert_generation import *  # noqa: F401,F403
from .encoder_decoder import *  # noqa: F401,F403
from .gpt2 import *  # noqa: F401,F403
from .roberta import *  # noqa: F401,F403
from .outputs import *  # noqa: F401,F403
