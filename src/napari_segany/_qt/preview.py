"""The preview: decoding the current prompts in a worker, newest prompts first.

One decode runs at a time; prompts that change meanwhile (a dragged point) wait as one pending
request, older ones are dropped. A decode first yields the model's fast answer from the
embedding alone, then the mask averaged over the session's prompt views, unless newer prompts
already wait. Results of prompts cleared meanwhile, or of another image, are not shown.
"""

from __future__ import annotations

from collections.abc import Callable

from napari_segany._qt.annotation import Annotation, Prompts
from napari_segany._qt.jobs import Jobs

DECODE = "decode"


class PreviewDecoder:
    """Decodes prompts into :attr:`Annotation.prediction`.

    Parameters
    ----------
    annotation : Annotation
    jobs : Jobs
        Runs the decode worker (in slot ``"decode"``, not blocking).
    read_prompts : callable () -> Prompts
        The prompts now on the prompt layers.
    """

    def __init__(
        self, annotation: Annotation, jobs: Jobs, read_prompts: Callable[[], Prompts]
    ) -> None:
        self.annotation = annotation
        self.jobs = jobs
        self.read_prompts = read_prompts
        #: newer prompts wait for the decode under way
        self.pending = False

    def running(self) -> bool:
        """Whether a decode runs."""
        return self.jobs.worker(DECODE) is not None

    def idle(self) -> bool:
        """Nothing runs and nothing waits: the preview shows the current prompts."""
        return not self.running() and not self.pending

    def drop_pending(self) -> None:
        self.pending = False

    def request(self) -> None:
        """Decode the current prompts; while a decode runs, only the newest prompts wait."""
        a = self.annotation
        if a.session is None:
            self.jobs.message.emit("Compute embeddings first.")
            return
        if self.running():
            self.pending = True
            return
        prompts = self.read_prompts()
        if prompts.empty:
            a.last_prompts = None
            a.show(None)
            return
        previous = a.refinement_base(prompts)
        session, ticket = a.session, a.ticket()

        def decode():
            kwargs = dict(
                points=prompts.points,
                point_labels=prompts.labels,
                box=prompts.box,
                previous=previous,
                multimask=True,
            )
            if session.prompt_views == 1:
                yield session.predict(**kwargs)
                return
            # the embedding's own answer at once, then the average over the prompt views,
            # unless newer prompts (a dragged point) already wait
            yield session.predict(**kwargs, prompt_views=1)
            if not self.pending:
                yield session.predict(**kwargs)

        # shown even if newer prompts wait (a dragged point): the newest follows at once
        self.jobs.start(
            DECODE,
            decode,
            yielded=lambda result: a.accept(ticket, prompts, result),
            errored=lambda exc: self.jobs.message.emit(f"{type(exc).__name__}: {exc}"),
            finished=self._finished,
            blocking=False,
        )

    def _finished(self) -> None:
        if self.pending:
            self.pending = False
            self.request()
