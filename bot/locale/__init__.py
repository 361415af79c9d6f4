"""The bot's message catalogues, one module per language, all keyed by :class:`bot.locale.keys.Text`.

``keys`` defines the keys; ``en``, ``zh_hans`` and ``zh_hant`` each export ``TEXTS: dict[Text, str]``.
Nothing here imports :mod:`bot.texts` (which imports these), so there is no import cycle; use
:mod:`bot.texts` to look messages up.
"""
