/*
 * tui_mouse: mouse events for the terminal UI. curses reports them as
 * KEY_MOUSE where the terminal supports mouse tracking (xterm and its
 * descendants, tmux, screen); elsewhere nothing arrives and the keyboard
 * does everything. A left click focuses the pane under the pointer and
 * acts on what it hits: a confusion cell lists its images, a list entry
 * opens in the viewer, and a class of the per-class table lists its
 * mistakes. The wheel steps through the pane under the pointer
 * without moving the focus, as in htop.
 */
#include "config.h"

#include <curses.h>

#include "draw.h"
#include "pane.h"

/* List entries per wheel notch. */
#define WHEEL_ENTRIES 3

static void focus(Ui *ui, DrawPane pane)
{
    if (ui->focus == pane)
        return;
    ui->focus = pane;
    ui->dirty |= UI_DIRTY(DRAW_IMAGE) | UI_DIRTY(DRAW_CONFUSION)
                 | UI_DIRTY(DRAW_MISTAKES) | UI_DIRTY(DRAW_CLASSES)
                 | UI_DIRTY(DRAW_HINT);
}

static void wheel(Ui *ui, int pane, int up)
{
    switch (pane) {
    case DRAW_IMAGE:
        pane_image_key(ui, up ? KEY_LEFT : KEY_RIGHT);
        break;
    case DRAW_CONFUSION:
        pane_confusion_key(ui, up ? KEY_UP : KEY_DOWN);
        break;
    case DRAW_MISTAKES:
        for (int i = 0; i < WHEEL_ENTRIES; i++)
            pane_list_key(ui, up ? KEY_UP : KEY_DOWN);
        break;
    case DRAW_CLASSES:
        pane_classes_key(ui, up ? KEY_UP : KEY_DOWN);
        break;
    default:
        break;
    }
}

/* Acts on a click at Y, X inside pane PANE of size R. */
static void click(Ui *ui, int pane, const DrawRect *r, int y, int x)
{
    int t, p, entry, c;

    switch (pane) {
    case DRAW_IMAGE:
        focus(ui, DRAW_IMAGE);
        break;
    case DRAW_CONFUSION:
        focus(ui, DRAW_CONFUSION);
        if (pane_confusion_cell_at(r->w, r->h, y, x, &t, &p)) {
            ui->cursor_true = t;
            ui->cursor_pred = p;
            ui->dirty |= UI_DIRTY(DRAW_CONFUSION);
            pane_confusion_open(ui, t, p);
        }
        break;
    case DRAW_MISTAKES:
        focus(ui, DRAW_MISTAKES);
        entry = pane_list_entry_at(ui, r->h, y);
        if (entry >= 0) {
            ui->list_pos = entry;
            pane_list_open(ui);
        }
        break;
    case DRAW_CLASSES:
        /* As on a matrix cell, a click moves the cursor and acts as
         * Enter. */
        focus(ui, DRAW_CLASSES);
        c = pane_classes_row_at(y);
        if (c >= 0) {
            ui->cursor_class = c;
            ui->dirty |= UI_DIRTY(DRAW_CLASSES);
            pane_classes_open(ui, c);
        }
        break;
    default:
        break;
    }
}

void tui_mouse(Ui *ui, const DrawLayout *layout)
{
    MEVENT ev;

    if (getmouse(&ev) != OK)
        return;
    int pane = draw_pane_at(layout, ev.y, ev.x);
    if (pane < 0)
        return;
    const DrawRect *r = &layout->pane[pane];

    if (ev.bstate & (BUTTON4_PRESSED | BUTTON5_PRESSED))
        wheel(ui, pane, (ev.bstate & BUTTON4_PRESSED) != 0);
    else if (ev.bstate & (BUTTON1_PRESSED | BUTTON1_CLICKED))
        click(ui, pane, r, ev.y - r->y, ev.x - r->x);
}
