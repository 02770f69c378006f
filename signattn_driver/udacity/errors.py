"""The converter's one exception tree: every problem the user can act on is a ConverterError."""


from signattn_driver.errors import SignattnError


class ConverterError(SignattnError):
    """An input or output problem the user can act on (message names the file)."""


class UnreadableBagError(ConverterError):
    """A bag that cannot be read at all; the other inputs are still converted."""


class BagStreamError(ConverterError):
    """A bag that fails while it is being read (corrupt chunk, truncation behind the index).

    Attributes:
        path: the ROS 1 bag.
        detail: what the reader reported.
        frames_read: camera frames read before the failure (None while still unknown).
    """

    def __init__(self, path, detail: str, frames_read: int | None = None):
        """Build the message from the bag, the reader's complaint and the frames read."""
        self.path, self.detail, self.frames_read = path, detail, frames_read
        read = '' if frames_read is None else f' after {frames_read} camera frames'
        super().__init__(f'{path}: corrupt ROS 1 bag, reading failed{read} ({detail}); this '
                         f'drive was not written')

    def after(self, frames_read: int) -> 'BagStreamError':
        """Return the same failure, knowing how many camera frames were read before it."""
        return BagStreamError(self.path, self.detail, frames_read)
