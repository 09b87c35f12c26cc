"""Rules on volume: negative_volume, zero_volume_flat."""

from __future__ import annotations


class VolumeRules:
    """The volume rules of the cleaning engine (methods of :class:`~quant_arena.market.cleaning.engine.Cleaner`)."""

    def negative_volume(self) -> None:
        cfg = self.cfg.negative_volume
        bad = (self.v < 0) & ~self.dead
        if not bad.any():
            return
        if cfg.action == "drop":
            self._drop("negative_volume", bad, "volume < 0", defer=True)
        else:
            self._event(
                "negative_volume",
                "changed",
                bad,
                f"volume < 0 set to {'0' if cfg.action == 'zero' else '|volume|'}",
            )
            self.v[bad] = 0.0 if cfg.action == "zero" else -self.v[bad]

    def zero_volume_flat(self) -> None:
        cfg = self.cfg.zero_volume_flat
        flat = (
            (self.v == 0)
            & (self.o == self.h)
            & (self.h == self.l)
            & (self.l == self.c)
            & ~self.filled
        )
        if not flat.any():
            return
        if cfg.action == "drop":
            self._drop(
                "zero_volume_flat",
                flat,
                "no trades: volume 0 and open = high = low = close",
            )
        elif cfg.action == "mark_filled":
            self._event(
                "zero_volume_flat",
                "changed",
                flat,
                "no trades: kept with is_filled = True",
            )
            self.filled[flat] = True
        else:
            self._event(
                "zero_volume_flat",
                "flagged",
                flat,
                "no trades: volume 0 and open = high = low = close",
            )
