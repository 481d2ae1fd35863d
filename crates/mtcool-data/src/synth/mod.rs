//! Synthetic look-alikes of every dataset, written in the providers' on-disk formats.
