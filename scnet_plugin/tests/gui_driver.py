"""Drives the Scipion project window (run under Xvfb by test_gui.py; not a test module itself).

    python -m scnet_plugin.tests.gui_driver PROJECT RESULT.json SHOT_DIR

Opens PROJECT in pyworkflow's ProjectWindow, records the protocol view and the protocol tree
(every item with its path), expands the SC-Net groups and screenshots the window
(SHOT_DIR/project.png), then opens the form of every SC-Net protocol and every viewer of the
project's SC-Net runs (calling each of their display actions), reads the text of the text
windows and the tables, screenshots again (SHOT_DIR/windows.png) and writes RESULT.json. Each action runs in a
Tk `after` callback, as a click would; errors are recorded, never shown in dialogs.
"""
import json
import os
import subprocess
import sys
import tkinter as tk
import traceback


def _texts(widget):
    """Text of every tk.Text under ``widget``."""
    out = []
    for ch in widget.winfo_children():
        if isinstance(ch, tk.Text):
            out.append(ch.get("1.0", "end"))
        out += _texts(ch)
    return out


def _tables(widget):
    """Headings and rows of every ttk.Treeview with headings under ``widget``."""
    from tkinter import ttk
    out = []
    for ch in widget.winfo_children():
        if isinstance(ch, ttk.Treeview) and ch["columns"]:
            cols = list(ch["columns"])
            out.append({"columns": [ch.heading(c, "text") for c in cols],
                        "rows": [[str(v) for v in ch.item(i, "values")] for i in ch.get_children("")]})
        out += _tables(ch)
    return out


def main(project, resultPath, shotDir):
    from pyworkflow.gui.project import ProjectWindow
    from pyworkflow.project import Manager
    from pyworkflow.viewer import DESKTOP_TKINTER, ProtocolViewer

    import scnet_plugin.protocols as sp

    w = ProjectWindow(Manager().getProjectPath(project))
    root = w.root
    root.geometry("1600x1000+0+0")
    res = {"errors": [], "forms": [], "viewers": [], "actions": [], "texts": [], "tables": []}
    tasks = []

    def record(name, fn):
        def run():
            try:
                fn()
            except Exception:
                res["errors"].append(f"{name}: {traceback.format_exc()}")
        tasks.append((name, run))

    def tree():
        pv = w.getViewWidget()
        t = pv.protTree
        res["view"] = w.project.getProtocolView()
        items = []

        def walk(item, path):
            for ch in t.get_children(item):
                p = path + [t.item(ch, "text")]
                items.append(p)
                if any("SC-Net" in t.item(g, "text") for g in t.get_children(ch)) or \
                        any("SC-Net" in t.item(g, "text") for gg in t.get_children(ch) for g in t.get_children(gg)):
                    t.item(ch, open=True)
                walk(ch, p)
        walk("", [])
        res["tree"] = items
        # width of each SC-Net label against the tree column (does it read fully?)
        import tkinter.font as tkfont
        from tkinter import ttk
        font = tkfont.Font(font=ttk.Style().lookup("Treeview", "font") or "TkDefaultFont")
        # text + one indent (20 px) per level + the icon (20 px)
        res["labelWidths"] = {p[-1]: font.measure(p[-1]) + 20 * len(p) + 20 for p in items if "SC-Net" in p[-1]}
        res["treeWidth"] = t.winfo_width()
        res["graphLabels"] = [r.getRunName() for r in w.project.getRuns()]

    def shot(name):
        def take():
            root.update()
            subprocess.run(["import", "-window", "root", os.path.join(shotDir, name)], check=True, timeout=60)
        return take

    record("tree", tree)
    record("shot project", shot("project.png"))
    pv = lambda: w.getViewWidget()
    for cls in (sp.ProtSCNetSimulate, sp.ProtSCNetPrepareTomograms, sp.ProtSCNetTrain, sp.ProtSCNetLoadModel,
                sp.ProtSCNetDenoise, sp.ProtSCNetFscEo, sp.ProtSCNetEvaluate, sp.ProtSCNetAssignHalves,
                sp.ProtSCNetImportAlignment):
        def openForm(cls=cls):
            prot = w.project.newProtocol(cls)
            res["forms"].append(cls.__name__)  # before: the form's own mainloop returns only at exit
            pv()._openProtocolForm(prot)
        record(f"form {cls.__name__}", openForm)

    viewerObjs = []
    runs = [r for r in w.project.getRuns() if r.getClassName().startswith("ProtSCNet")]
    for run in runs:
        targets = [run] + [o for _, o in run.iterOutputAttributes()]
        # a set of models: its items have a viewer (double-click on a model in the output browser)
        targets += [o.getFirstItem() for o in targets if o.getClassName() == "SetOfSCNetModels"]
        for obj in targets:
            for V in w.project.getDomain().findViewers(obj, DESKTOP_TKINTER):
                if not V.__module__.startswith("scnet_plugin"):
                    continue

                def openViewer(V=V, run=run, obj=obj):
                    v = V(project=w.project, protocol=run, parent=w)
                    res["viewers"].append(f"{V.__name__} on {obj.getClassName()}")
                    viewerObjs.append(v)
                    if isinstance(v, ProtocolViewer):
                        v.visualize(run, windows=w)  # its form; its actions follow
                    else:
                        v.visualize(obj)
                record(f"viewer {V.__name__} {obj.getClassName()}", openViewer)

                def actions(V=V):
                    v = [x for x in viewerObjs if type(x) is V][-1]
                    if not isinstance(v, ProtocolViewer):
                        return
                    for key, fn in v._getVisualizeDict().items():
                        views = fn() or []
                        res["actions"].append(f"{V.__name__}.{key}: {[type(x).__name__ for x in views]}")
                        for view in views:
                            view.show()
                record(f"actions {V.__name__}", actions)

    def collectTexts():
        for top in [root] + [x for x in root.winfo_children() if isinstance(x, tk.Toplevel)]:
            res["texts"] += _texts(top)
            res["tables"] += _tables(top)
        import matplotlib.pyplot as plt
        res["figures"] = [plt.figure(n).get_label() for n in plt.get_fignums()]
    record("texts", collectTexts)
    record("shot windows", shot("windows.png"))

    def finish():
        with open(resultPath, "w") as fh:
            json.dump(res, fh, indent=1)
        os._exit(0)
    tasks.append(("finish", finish))

    def schedule(i=0):
        name, fn = tasks[i]
        res.setdefault("done", []).append(name)
        if i + 1 < len(tasks):  # schedule the next first: fn may enter a window's own mainloop
            root.after(1500, schedule, i + 1)
        fn()
    root.after(4000, schedule)
    w.show()


if __name__ == "__main__":
    main(*sys.argv[1:4])
