"""What Python's fork server imports for the render pools (`batch.preload`), once per
process; nothing else imports this module.

The fork server also imports the caller's main module by name when it was run with -m,
so its workers need not import its dependencies again. Each worker still runs that
module's body as `__mp_main__`, as a spawned worker would, and `runpy` warns there that
the module is already imported: expected here, so the warning is filtered in the fork
server, and with it in every worker forked from it.
"""

import warnings

warnings.filterwarnings("ignore", category=RuntimeWarning,
                        message=r".* found in sys\.modules after import of package")

from billing_core.render import batch  # noqa: E402,F401  (WeasyPrint and the renderer)
