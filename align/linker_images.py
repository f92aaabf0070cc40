"""Photo linking on :class:`align.linker.Linker` (a mixin): the workspace's image linker.

Kept apart from :mod:`align.linker` so that the text linker stays one readable module;
:class:`ImageLinking` needs ``workspace``, ``device``, ``batch_size``, ``graph``,
``features``, ``_images`` and ``_check_k`` from the class it is mixed into.
"""

from __future__ import annotations

from .base import Link


class ImageLinking:
    """``image_linker``, ``link_image`` and ``link_images`` of :class:`align.Linker`."""

    def image_linker(self, untrained: bool = False):
        """The workspace's :class:`~align.images.ImageLinker` (loaded once). Without a trained
        one, :class:`LinkerError` names the training command; ``untrained=True`` links by
        the nearest catalogue image instead."""
        from .images import ImageLinker

        if self._images is None or self._images.untrained != untrained:
            self._images = ImageLinker(
                self.workspace, untrained=untrained, device=self.device,
                batch_size=min(self.batch_size, 32), graph=self.graph, features=self.features,
            )  # fmt: skip
        return self._images

    def link_image(self, image, *, k: int | None = None, untrained: bool = False) -> Link:
        """Link one photo (a local path or a ``PIL.Image``) to the entity it shows.

        The :class:`Link` has ``mention`` = the file name, ``start = end = None``, the
        best entity (or NIL below the calibrated threshold), its probability, ``k``
        alternatives and ``representation`` = photo embedding + entity representation.
        An unreadable image raises :class:`~fusion.encoders.ImageError` naming the file.
        """
        return self.link_images([image], k=k, untrained=untrained)[0]

    def link_images(self, images, *, k: int | None = None, untrained: bool = False,
                    progress: bool = False) -> list[Link]:  # fmt: skip
        """Link many photos (batched); ``progress`` shows a progress bar."""
        k = self._check_k(k)
        return self.image_linker(untrained).link_images(images, k=k, progress=progress)
