#ifndef FMNIST_TUI_H
#define FMNIST_TUI_H

#endif
