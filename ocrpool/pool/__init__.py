"""The pool core: ``OcrPool`` (executor.py) over one supervisor thread (supervisor.py)
that owns the job leases (jobs.py) and the worker handles (handle.py); workers run
worker.py and speak protocol.py; exits.py says why a worker ended. Importing this
package imports none of them, so a worker loads only what it runs."""
