#include "billnet/trainer/curves.h"

#include <cmath>

#ifdef BILLNET_TRAINER_HAS_VIZ
#include "billnet/viz/charts.h"
#include "billnet/viz/png.h"
#endif

namespace billnet::trainer {

#ifdef BILLNET_TRAINER_HAS_VIZ

Status WriteTrainingCurves(const std::vector<EpochMetrics>& history, const std::string& path) {
  if (history.empty()) return InvalidArgument("curves '" + path + "': no epochs yet");
  viz::Series train_loss{"train loss"}, test_loss{"test loss"};
  viz::Series train_acc{"train accuracy (steps)"}, test_top1{"test top-1 (clips)"},
      test_top5{"test top-5 (clips)"};
  test_loss.dashed = true;
  test_top5.dashed = true;
  std::vector<viz::Separator> separators;
  for (size_t i = 0; i < history.size(); ++i) {
    const EpochMetrics& m = history[i];
    const double x = double(i + 1);
    if (i == 0 || history[i - 1].stage != m.stage)
      separators.push_back({double(i) + 0.5, "S" + std::to_string(m.stage)});
    train_loss.x.push_back(x), train_loss.y.push_back(m.train_loss);
    test_loss.x.push_back(x), test_loss.y.push_back(m.test_loss);
    train_acc.x.push_back(x), train_acc.y.push_back(100 * m.train_accuracy);
    test_top1.x.push_back(x), test_top1.y.push_back(100 * m.test_top1);
    test_top5.x.push_back(x), test_top5.y.push_back(100 * m.test_top5);
  }
  for (viz::Series* s : {&train_loss, &test_loss, &train_acc, &test_top1, &test_top5})
    s->markers = history.size() < 40;
  viz::LineChartSpec spec;
  spec.width = 1000;
  spec.height = 700;
  spec.title = "BILLNET training: CCE loss and accuracy per epoch through the stages";
  spec.x_title = "epoch";
  spec.x_min = 0.5;
  spec.x_max = double(history.size()) + 0.5;
  spec.separators = separators;
  viz::Panel loss{"CCE loss", {train_loss, test_loss}};
  viz::Panel acc{"accuracy (%)", {train_acc, test_top1, test_top5}};
  acc.y_min = 0;
  acc.y_max = 100;
  spec.panels = {loss, acc};
  const viz::Canvas canvas = viz::LineChart(spec);
  const std::string err = viz::WritePng(path, canvas.data(), canvas.width(), canvas.height());
  if (!err.empty()) return Internal(err);
  return Status::Ok();
}

#else

Status WriteTrainingCurves(const std::vector<EpochMetrics>&, const std::string& path) {
  return Unsupported("curves '" + path + "': this trainer was built without viz/");
}

#endif

}  // namespace billnet::trainer
