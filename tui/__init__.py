"""trajrec's terminal UI (Textual): the library of episodes and the episode replayer.

The only package that imports textual. Build the app with :func:`trajrec.tui.app.create_app` (``trajrec view`` and the
tests share it). One widget per module:

=======================  =====================================================================
module                   owns
=======================  =====================================================================
``app``                  ``TrajrecApp`` and ``create_app``: screens, episode order, help
``library_screen``       the library: filter, table, scan progress; streams summaries in
``episode_table``        ``EpisodeTable``: the library rows (Line API, sortable, 10k+ rows)
``scan_status``          ``ScanStatus``: the library's one-line status and progress bar
``episode_screen``       one episode: navigation, playback, search, marker index, labeling keys
``timeline``             ``StepTimeline``: one line per step (Line API, decoded on demand)
``timeline_legend``      ``TimelineLegend``: marker legend, position, playback speed, labeling progress
``step_detail``          ``StepDetail``: the current step in full
``state_pane``           ``StatePane``: the state diff of a step, or the whole state
``episode_header``       ``EpisodeHeader``: task, provenance, terminal check
``prompt_bar``           ``PromptBar``: the one-line input behind ``:``, ``/``, ``c`` and ``t``
``key_order``            keys act in the order typed: the app handles each key whole; holds keys while a
                         prompt's answer, a search or an episode to open is pending (no widget)
``text_view``            ``TextView``: scrollable styled text (Line API), base of the two panes
``help_screen``          ``HelpScreen``: every key, the filter grammar, the legend
``key_hints``            ``KeyHints``: the main keys, one line at the bottom (a light Footer)
``markers``              styles of step kinds and label marks (no widget)
``step_scan``            thread-side scans of an episode: marker index, text search (no widget)
``label_session``        ``LabelSession``: one annotator labeling one episode: index, undo (no widget)
``label_source``         ``LabelSource``: the run folders' label stores under one lock (no widget)
=======================  =====================================================================

Recorded text is data: every string from an episode reaches the screen as a ``rich.text.Text`` built from
``trajrec.replay.render.safe`` output, never as markup.
"""
