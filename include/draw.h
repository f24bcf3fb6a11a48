#ifndef FMNIST_DRAW_H
#define FMNIST_DRAW_H

#endif
