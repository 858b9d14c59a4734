//! Switchyard media: audio and image decoding (symphonia, image), resampling to 16 kHz, audio encoding, with limits and counted copies.
