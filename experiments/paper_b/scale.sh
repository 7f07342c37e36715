# Sourced by the Paper B recipes after ../common.sh: the settings of each scale.
#   paper: the experiment's own settings (GPU; LAB, SEA, UTO under $PLANKFLUX_DATA_DIR)
#   demo:  synthetic *_demo sets (720 / 600 / 1,500 pairs, 64 px), EfficientNet-B0 from
#          random init, one fold, $EPOCHS epochs on a CPU (experiments/paper_b/demo.sh)
#   smoke: synthetic *_tiny sets, tiny towers, one fold, 1 epoch (seconds a run)
SWEEPS=$PLANKFLUX_LOG_DIR/paper_b
TARGETS=data@callbacks.knn_evaluation.targets
case $MODE in
  paper) SIZE=""; CLIP=(); DINO=() ;;
  demo)
    SIZE=demo
    EPOCHS=${EPOCHS:-30}
    CLIP=(trainer=cpu "trainer.max_epochs=$EPOCHS" +trainer.enable_progress_bar=false
          model.image_tower.pretrained=false data.fold=0 data.num_workers=0
          data.pin_memory=false encoder/image=efficientnet_b0)
    DINO=("${CLIP[@]}" data.multicrop.global_size=64 data.multicrop.local_size=28
          data.batch_size=64 model.out_dim=4096) ;;
  smoke)
    SIZE=tiny
    CLIP=(debug=clip_tiny trainer.max_epochs=1 data.fold=0 encoder/image=tiny_cnn)
    DINO=(debug=dino_tiny trainer.max_epochs=1 data.fold=0 encoder/image=tiny_cnn) ;;
esac
# data=<set> at the recipe's scale: the real set for the paper, else the synthetic one.
data() {
  if [[ -z $SIZE ]]; then echo "cytosense_$1"; else echo "synthetic_$1_$SIZE"; fi
}
