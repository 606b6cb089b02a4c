"""``python -m coord.local_cluster --address A --peers B,C``: one member child
(see :func:`coord.local_cluster.agent.main`)."""

import logging
import os

from coord.local_cluster.agent import main

if __name__ == "__main__":
    _code = main()
    logging.shutdown()
    # Hard exit: a handler thread still blocked inside the member (say a
    # long wait_watch_event) must not keep the process alive.
    os._exit(_code)
